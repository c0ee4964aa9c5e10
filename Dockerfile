# imagebot: one image for every process (worker, bots). CPU by default; CUDA with
#   docker build --build-arg VARIANT=cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS base-cpu

FROM ${CUDA_IMAGE} AS base-cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/* && ln -sf /usr/bin/python3 /usr/local/bin/python

FROM base-${VARIANT}
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 HF_HOME=/data/hf IMAGEBOT_DATA_DIR=/data VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --no-cache-dir --upgrade pip
# torch and torchvision first, from the index for the chosen variant, so nothing pulls another build
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" --index-url "${TORCH_INDEX}"
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY worker worker
COPY bots bots
COPY moderation moderation
COPY cli cli
RUN pip install --no-cache-dir ".[all]" \
    && pip install --no-cache-dir --no-deps invisible-watermark==0.2.0
RUN useradd --create-home --uid 1000 imagebot && mkdir -p /data && chown imagebot /data
USER imagebot
VOLUME /data
# Each service picks its command: imagebot worker --queue gpu | worker --queue cloud | telegram | discord
ENTRYPOINT ["imagebot"]
CMD ["--help"]
