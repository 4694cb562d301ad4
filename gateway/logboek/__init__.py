"""Partners' own Logboeken: the lines about their processing, delivered over OTLP."""
