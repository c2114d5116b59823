# One image for every Diffusion Lab service: the migrate step, the dashboard and the workers.
#   docker compose build                                  # CUDA build of PyTorch (GPU workers)
#   docker compose build --build-arg TORCH_INDEX_URL=...  # an index of CPU-only torch wheels
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIFFLAB_DATA_DIR=/data \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true

# A C++ compiler for torch.compile's CPU code (train.compile); without one a run says so and
# trains eagerly.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 difflab \
    && mkdir -p /data \
    && chown difflab:difflab /data

WORKDIR /app

# PyTorch first, in its own layer: it is by far the largest and changes least often.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY diffusion ./diffusion
COPY db ./db
COPY worker ./worker
COPY dashboard ./dashboard
COPY difflab ./difflab
RUN pip install . && python -c "import difflab.cli, db.settings, dashboard"

USER difflab
VOLUME ["/data"]
EXPOSE 8501

# Each compose service sets its own command; this one lists them.
CMD ["difflab", "--help"]
