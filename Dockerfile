# Multi-stage build: cgo is needed for SQLite (mattn/go-sqlite3).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/pombo ./cmd/pombo

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/pombo /data
COPY --from=build /out/pombo /usr/local/bin/pombo
# The standard ports on every address, data in the /data volume. Set the
# hostname with `docker run --hostname mail.example.org` (pombo takes the
# container's name) or mount your own /etc/pombo/config.toml.
RUN printf '%s\n' \
    'data_dir = "/data"' \
    '[smtp]' 'listen = [":25"]' \
    '[submission]' 'listen = [":587"]' 'tls_listen = [":465"]' \
    '[imap]' 'listen = [":143"]' 'tls_listen = [":993"]' \
    '[pop3]' 'listen = [":110"]' 'tls_listen = [":995"]' \
    '[http]' 'listen = [":80"]' \
    > /etc/pombo/config.toml
ENV POMBO_CONFIG=/etc/pombo/config.toml
VOLUME /data
EXPOSE 25 465 587 143 993 110 995 80
ENTRYPOINT ["pombo"]
CMD ["serve"]
