# syntax=docker/dockerfile:1
# imdsd container image. It is meant for the repository root, next to
# Cargo.toml, and is used by examples/kubernetes/.
#
#   docker build -t imdsd:dev .
#   docker run --rm -v "$PWD/examples:/etc/imdsd:ro" imdsd:dev check --config /etc/imdsd/imdsd.toml
#
# The runtime image is distroless: glibc, libgcc_s (which the binary links),
# CA certificates (rustls reads the system trust store) and /etc/passwd with
# "nonroot" (65532). It has no shell and no package manager, so the final
# stage has no RUN.

# Matches rust-version in Cargo.toml. bookworm matches the runtime's glibc
# (Debian 12).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what `cargo build` reads. .dockerignore keeps the rest out of the
# context.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# `imdsd setup --user` embeds the user unit. Without .git in the context,
# build.rs embeds no commit: --version prints the version alone.
COPY systemd/imdsd-user.service ./systemd/
# BuildKit cache mounts keep the registry and target/ between builds. The
# binary is copied out of the cached target/ because a cache mount is not
# part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/imdsd /out/usr/local/bin/imdsd \
    && install -d -m 0700 /out/var/lib/imdsd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/imdsd /usr/local/bin/imdsd
# The state directory (token.key and the control socket). It is writable by
# the daemon's user, so the image runs without volumes. Kubernetes mounts an
# emptyDir over it, because the root file system is read-only there.
COPY --from=build --chown=65532:65532 /out/var/lib/imdsd /var/lib/imdsd
ENV STATE_DIRECTORY=/var/lib/imdsd \
    IMDSD_CONTROL_SOCKET=/var/lib/imdsd/run/control.sock
# Numeric, so that the kubelet can check runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/imdsd"]
CMD ["run", "--config", "/etc/imdsd/imdsd.toml"]
