# syntax=docker/dockerfile:1
# pcc-2fa: build with every dependency, run with the production ones only, as the image's non-root `node` user.
#   docker build -t pcc-2fa .
#   docker run -p 3000:3000 -v pcc-2fa-data:/data -e SMS_PROVIDER=webhook -e SMS_WEBHOOK_URL=… \
#     -e SMS_WEBHOOK_SECRET=… pcc-2fa                                          # embedded database in the volume
#   docker run -p 3000:3000 -e DATABASE_URL=postgres://… -e SECRET_KEYS=… -e SMS_PROVIDER=… pcc-2fa
# NODE_ENV=production: SMS_PROVIDER must say where tokens go (never `log`), and no demo account is made.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# The embedded database lives in DATA_DIR: a volume the non-root user owns (a new named volume inherits this owner).
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
VOLUME ["/data"]
USER node
EXPOSE 3000
# No curl in slim images: node's own fetch asks for readiness (the database answers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node as PID 1 handles SIGTERM itself (graceful stop). `docker stop` kills after 10 s unless told otherwise: give it
# SHUTDOWN_TIMEOUT_MS (25 s) and a little more, e.g. `docker stop -t 30` or `docker run --stop-timeout 30`.
CMD ["node", "dist/server.js"]
