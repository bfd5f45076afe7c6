# Stand-in for postgres:15-bookworm, built from Debian bookworm's postgresql-15 package by
# docker/base-images.sh (no registry needed). It behaves like the official image where
# docker/compose.yaml relies on it: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on first
# start, data in the volume /var/lib/postgresql/data, password (scram-sha-256) logins over TCP,
# trusted local socket logins inside the container (pg_isready, psql), port 5432.
ARG BASE=fairpath-debian:bookworm
FROM ${BASE}
# Debian's postgresql-common would create and start a cluster "main" on install: the entrypoint
# makes the one cluster, in the volume, on first start instead.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
RUN mkdir -p "$PGDATA" /run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /run/postgresql \
    && chmod 700 "$PGDATA"
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# The official image's choice: SIGINT is PostgreSQL's "fast" shutdown.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
