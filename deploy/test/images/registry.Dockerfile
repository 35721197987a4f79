# Test-only upstream: Debian's docker-registry serving the demo Talos releases (bind-mounted read-only at
# /var/lib/registry by docker-compose.test.yml) in place of ghcr.io.
FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && printf '%s\n' 'version: 0.1' 'log: { level: warn }' \
   'storage: { filesystem: { rootdirectory: /var/lib/registry }, maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } }' \
   'http: { addr: "0.0.0.0:5000" }' >/etc/docker/registry/serve.yml
USER nobody
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/serve.yml"]
