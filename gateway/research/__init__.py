"""Research releases: agreements with science partners and the extracts made under them.

``agreements`` parses and validates the agreement files in ``policies/agreements/``;
``synthetic`` generates realistic fake people and events; ``generalise`` and
``disclosure`` hold the pure generalisation and k-anonymity logic; ``extract`` runs the
streaming pipeline; ``manifest`` and ``bundle`` describe, sign, encrypt, publish, verify
and open the one-file bundle a researcher receives.

The gateway's side: ``consent_states`` (provider consent states), ``intake`` (rows
checked against their instrument and pseudonymised on intake), ``obligations`` (does an
agreement meet the policy's release obligations), ``release_builder`` (one release, end
to end, without a database), ``release_folder`` (the releases folder: pending bundles,
recovery), ``recipients`` (researchers' age keys), ``service`` (the use cases, one
module each, with policy, store and audit through ``gateway.usecase``), ``errors`` (every
research error) and ``inclusion`` (checking offline that a release is in the audit log).
"""
