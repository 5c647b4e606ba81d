# The app-snapshots image: one Node.js program, run by the Helm chart (chart/app-snapshots) as
# `webhook` and as `storage`. Our machines have no container engine, so nothing here builds or tests
# this file; the chart's tests render and validate the objects that run it.
#
#   docker build -t <registry>/app-snapshots:0.1.0 .

# --- build: compile src/ and keep only the production dependencies --------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsconfig.build.json also lists test harness folders; .dockerignore keeps test/ out, so only src/ compiles.
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

# --- runtime ------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json: the CLI reads its version from it (../../package.json of dist/src/cli.js).
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# local-volume-provider's plugin starts its file server as `/local-volume-fileserver` with no arguments.
RUN printf '#!/bin/sh\nexec node /app/dist/src/lvpFileserver.js "$@"\n' > /local-volume-fileserver \
 && chmod 0755 /local-volume-fileserver
# The chart's fixed non-root identity (Pod Security "restricted").
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
