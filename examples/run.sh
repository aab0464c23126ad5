#!/usr/bin/env bash
# run.sh [MODEL] -- ranks the three seed examples with MODEL (a folder or a Hugging Face repo id;
# default jinaai/jina-reranker-v2-base-multilingual): tool specs for a function-calling query, SQL
# table schemas for a text-to-SQL question, and the multilingual skincare documents.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${RERANK:-$here/../build/rerank}
model=${1:-jinaai/jina-reranker-v2-base-multilingual}
rank() { echo "== $1"; "$bin" rank -m "$model" -q "$1" --documents "$2" --top-n "${3:-0}"; }
rank "What would be the carbon footprint of driving from Berlin to Munich with two passengers?" "$here/functions.jsonl" 3
rank "which customers bought a summer outfit in the past 7 days?" "$here/sql_tables.jsonl" 3
rank "Organic skincare products for sensitive skin" "$here/skincare.jsonl"
