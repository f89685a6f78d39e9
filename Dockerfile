# syntax=docker/dockerfile:1
#
# mfactl as a small container image: a static (musl) binary on distroless, run as a non-root
# user. Build it from the repository root with BuildKit (Docker 23 and later, or buildx):
#
#   docker build --build-arg MFACTL_BUILD_COMMIT=$(git rev-parse HEAD) -t mfactl .
#   docker run --rm mfactl --version
#
# .git stays out of the build context (.dockerignore): MFACTL_BUILD_COMMIT names the commit
# for `mfactl --version` instead; without it the version says the commit is unknown.
# .ci/run runs the same cargo command on every change and checks that the binary is static.
# docs/automation.md runs the image as a Kubernetes CronJob and as a Container Apps job.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# musl-gcc compiles aws-lc (TLS and request signing) for the musl target; nothing else is needed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY build ./build
COPY src ./src
COPY crates ./crates
COPY benches ./benches
ARG MFACTL_BUILD_COMMIT=
# The registry and target folders are cache mounts: a rebuild after a source change compiles
# mfactl alone. The binary is copied out of the mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    MFACTL_BUILD_COMMIT="${MFACTL_BUILD_COMMIT}" \
    cargo build --locked --profile dist --target x86_64-unknown-linux-musl --bin mfactl \
 && cp target/x86_64-unknown-linux-musl/dist/mfactl /mfactl

# distroless/static: no shell, no package manager, no libc; CA certificates (Graph is reached
# over TLS), tzdata, and /etc/passwd with the `nonroot` user (65532, home /home/nonroot).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /mfactl /usr/local/bin/mfactl
USER 65532:65532
# Journals and saved plans are written to the working folder by default, the token cache of
# `mfactl login` under $HOME/.cache: both are the nonroot user's home, which is writable. With
# a read-only root file system, mount a volume there (docs/automation.md does).
WORKDIR /home/nonroot
ENV HOME=/home/nonroot
ENTRYPOINT ["/usr/local/bin/mfactl"]
CMD ["--help"]
