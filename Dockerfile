# The Cloud Run image (service and job): the `cloudrun` binary on a distroless base.
#   docker build -t REGION-docker.pkg.dev/PROJECT/llmpulse/llmpulse:TAG .
#checkov:skip=CKV_DOCKER_2:Cloud Run checks a service with its own startup probe (TCP on PORT by default), ignoring HEALTHCHECK; a job has no port to probe
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p llmpulse-functions --bin cloudrun \
 && cp target/release/cloudrun /cloudrun

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /cloudrun /usr/local/bin/cloudrun
COPY core/suites /app/suites
WORKDIR /app
ENV PORT=8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/cloudrun"]
