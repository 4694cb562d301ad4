// A real OpenID Provider (panva/oidc-provider, OpenID Certified) for the tests.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG: { port, clients: [{client_id, client_secret, redirect_uris,
//           post_logout_redirect_uris}], jwks: {keys: [private JWK]}, audience, acr }
// Signing in is a one-field form (the login name becomes `sub`); the form may send an
// `acr` to claim, else CONFIG.acr. Consent is granted at once. Access tokens for the
// resource CONFIG.audience are JWTs (RFC 9068). Prints "ready <issuer>" when listening.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}`;

const provider = new Provider(issuer, {
  clients: cfg.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: cfg.jwks,
  cookies: { keys: ['test-only-cookie-key-0123456789abcdef'] },
  acrValues: ['urn:gateway:loa:low', 'urn:gateway:loa:substantial', 'urn:gateway:loa:high'],
  claims: { openid: ['sub'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => cfg.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'gateway',
        audience: cfg.audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
      }),
    },
  },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  loadExistingGrant: async (ctx) => {
    const known = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (known) return ctx.oidc.provider.Grant.find(known);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid');
    grant.addResourceScope(cfg.audience, 'gateway');
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>Test IdP</title><h1>Test IdP ${escape(issuer)}</h1>
<form method="post" action="/interaction/${escape(details.uid)}">
<label for="login">Login</label><input id="login" name="login" autofocus>
<input type="hidden" name="acr" value="${escape(cfg.acr)}">
<button type="submit" id="idp-submit">Sign in</button></form>`);
      return;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const form = new URLSearchParams(Buffer.concat(chunks).toString());
    const login = form.get('login');
    if (!login) {
      res.statusCode = 400;
      res.end('login required');
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login, acr: form.get('acr') || cfg.acr, amr: ['pwd', 'otp'] } },
      { mergeWithLastSubmission: false },
    );
  } catch (err) {
    res.statusCode = 400;
    res.end(String(err));
  }
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) interaction(req, res);
  else callback(req, res);
});
server.listen(cfg.port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
