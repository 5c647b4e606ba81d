# The app-snapshots image for builders that want a Dockerfile. There is one recipe, `make image`
# (build/image/build.py): it writes the image as an OCI archive without any container engine, and
# with `--rootfs` unpacks the same two layers into a folder. This file only copies that folder:
#
#   make image                                   # also writes .cache/image/rootfs
#   docker build -t <registry>/app-snapshots:0.1.0 .cache/image/rootfs -f Dockerfile
#
# The result has the same files, user and entrypoint as the archive (`docker load` takes that one
# directly: docs/image.md). Nothing in it runs at build time, so it needs no shell.
FROM scratch
COPY . /
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production
WORKDIR /app
# The chart's fixed non-root identity (Pod Security "restricted"); numeric, so no /etc/passwd lookup is needed.
USER 65532:65532
# /local-volume-fileserver (LVP's sidecar command) is a symlink to /app/dist/src/lvpFileserver.js.
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/src/cli.js"]
