# Dockerfile -- the `rerank` image: Debian 12, built with the README's commands in a build stage,
# run as a non-root user with only the runtime libraries. The model cache is a volume (HF_HOME);
# the health check asks /ready, so an orchestrator without its own probes waits for the model.
#
#   docker build -t rerank .
#   docker run --rm -p 8080:8080 -v rerank-models:/models rerank
#   (-m another/model: docker run ... rerank serve -m another/model --host 0.0.0.0 --port 8080)

FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make clean && make -j"$(nproc)" build/rerank && strip build/rerank

FROM debian:12-slim
# the libraries build/rerank links (readelf -d: cjson, utf8proc, oniguruma, curl, microhttpd), CA
# certificates for `rerank pull`, curl for the health check
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libcjson1 libutf8proc2 libonig5 libcurl4 libmicrohttpd12 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /models --no-create-home rerank \
    && mkdir -p /models && chown rerank:rerank /models
COPY --from=build /src/build/rerank /usr/local/bin/rerank
ENV HF_HOME=/models
VOLUME /models
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/ready || exit 1
ENTRYPOINT ["rerank"]
CMD ["serve", "-m", "jinaai/jina-reranker-v2-base-multilingual", "--host", "0.0.0.0", "--port", "8080", \
     "--log-format", "json"]
