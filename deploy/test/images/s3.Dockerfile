# Test-only S3 protocol server in place of MinIO (which has no Debian or npm package): s3rver, installed on the host
# (npm inside a container cannot verify TLS on every network) and copied in. Also the test's bucket creator.
FROM node:20-bookworm-slim
WORKDIR /srv
COPY node_modules /srv/node_modules
COPY s3-server.js s3-create-bucket.js /srv/
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 9000
CMD ["node", "/srv/s3-server.js"]
