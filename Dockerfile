# Multi-stage image for mado-gateway. (Docker cannot run on the development machines; this file
# is kept valid by review, see README "Docker".)
FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json openapi.yaml ./
COPY src ./src
COPY migrations ./migrations
COPY bin ./bin
COPY ui ./ui
COPY scripts/build-ui.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:26-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
# Non-root: the image is meant to run against an external PostgreSQL (DATABASE_URL). The
# embedded PostgreSQL also works as this user (it refuses only root).
RUN groupadd --system gateway && useradd --system --gid gateway --home /app gateway \
    && mkdir -p /data && chown gateway:gateway /data
COPY --from=build --chown=gateway:gateway /app/node_modules ./node_modules
COPY --from=build --chown=gateway:gateway /app/dist ./dist
COPY --chown=gateway:gateway package.json openapi.yaml ./
COPY --chown=gateway:gateway bin ./bin
USER gateway
EXPOSE 8080
# HOST=0.0.0.0 requires authentication: mount a GATEWAY_CONFIG with an `auth` section.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/cli.js", "serve"]
