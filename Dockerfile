# One image for every CitySteward service; the command picks the service.

# The web application is built with the devDependencies (Vite, Vue) and only its output is kept.
FROM node:24-bookworm-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build:web

FROM node:24-bookworm-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Without devDependencies there is no Vite for the `prepare` build: skip scripts, then build the native addons.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3 @serialport/bindings-cpp \
  && (npm rebuild better-sqlite3-napi || true)
COPY . .
COPY --from=web /app/cloud/web/dist cloud/web/dist
# The server code built ahead of time (esbuild comes with tsx, a dependency): processes run it without the
# tsx loader, and CITYSTEWARD_RUN=build makes a missing or stale build an error instead of a fallback.
RUN node bin/build-server.js
ENV CITYSTEWARD_RUN=build
# Mount points of the compose volumes, owned by the service user (a new named volume takes the owner from the image).
RUN mkdir -p /data /config /gateway-data /photos && chown node:node /data /config /gateway-data /photos
USER node
ENTRYPOINT ["node", "bin/citysteward.js"]
