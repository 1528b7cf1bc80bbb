# Container image for the multi-casskop controller. Not built in this project's CI (no Docker
# engine there); kept minimal: a release build, then a distroless non-root runtime image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p multi-casskop --bin multi-casskop

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/multi-casskop /usr/local/bin/multi-casskop
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/multi-casskop"]
