# Carteiro's image: Node 24, production dependencies only, run as the unprivileged `node` user.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build step; the first
# stage only installs, so the final image has no npm cache, compilers or dev tools.
#
#   docker build -t carteiro .
#   docker compose up            # Postgres, Redis, one API and two workers (compose.yaml)

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs one at run time (PGlite is WebAssembly), and the dev-only
# `node` package's download of a second Node binary is skipped along with dev dependencies.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    CARTEIRO_LOG_FORMAT=json \
    CARTEIRO_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# The embedded default keeps its ledger here when no DATABASE_URL is given.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# /api/webhooks/health answers 200 while the process can reach its ledger (503 when it cannot). The worker role
# serves no HTTP: compose.yaml gives workers their own check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/webhooks/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--min-semi-space-size=64", "--max-semi-space-size=64", "--heap-growing-percent=50", "src/cli/main.ts"]
CMD ["start"]
