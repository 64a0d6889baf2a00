# syntax=docker/dockerfile:1
# aptflow in a container: `docker compose up` runs it with PostgreSQL and
# mailpit (docker-compose.yml). The image's default command is `serve`; the
# same image runs `migrate`, `work`, `token create NAME`...

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
# go.mod replaces gofpdf with third_party/gofpdf, whose go.mod the module
# graph needs before the rest of the source is there.
COPY go.mod go.sum ./
COPY third_party/gofpdf/go.mod third_party/gofpdf/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# A static binary (no cgo) runs on distroless/static, which has no libc.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aptflow ./cmd/aptflow

# distroless/static: CA certificates and time zone data (CRON_TZ=Europe/Paris)
# but no shell or package manager; :nonroot runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aptflow /aptflow
# MAIL_DIR (var/mail, when SMTP_URL is unset) is relative: make it writable.
WORKDIR /home/nonroot
USER nonroot:nonroot
# The default 127.0.0.1:8080 would not be reachable from outside the container.
# PUBLIC_URL (links in e-mails, the QR code) cannot be 0.0.0.0: this default
# suits `docker run -p 8080:8080`; set the real one anywhere else.
ENV HTTP_ADDR=0.0.0.0:8080 \
    PUBLIC_URL=http://localhost:8080 \
    LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/aptflow"]
CMD ["serve"]
