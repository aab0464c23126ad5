/*
 * safetensors.h -- read-only access to safetensors files, single or sharded.
 *
 * A safetensors file is: u64 little-endian header length N, N bytes of JSON mapping each tensor name
 * to {dtype, shape, data_offsets [begin, end)} relative to the data section, then the data. rr_st
 * maps every file of a model and validates every entry (dtype known, shape sane, byte range inside
 * the file, size = product of shape x dtype size, no two tensors overlapping) before anyone reads a
 * byte of tensor data. Tensors are views into the mappings: nothing is copied.
 */
#ifndef RR_SAFETENSORS_H
#define RR_SAFETENSORS_H

#include "core/core.h"

#define RR_ST_MAX_DIMS 4

typedef enum rr_dtype {
    RR_DTYPE_F32 = 0,
    RR_DTYPE_F16 = 1,
    RR_DTYPE_BF16 = 2,
    RR_DTYPE_I64 = 3, /* buffers such as position_ids: listed, never used as weights */
    RR_DTYPE_OTHER = 4, /* any other valid safetensors dtype (I8, U8, F64, ...): listed, refused as weights */
} rr_dtype;

size_t rr_dtype_size(rr_dtype t);
const char *rr_dtype_name(rr_dtype t);

typedef struct rr_st_tensor {
    char *name;
    rr_dtype dtype;
    int n_dims;
    int64_t shape[RR_ST_MAX_DIMS];
    const void *data; /* view into the file's mapping; may be unaligned */
    size_t nbytes;
    size_t offset;    /* of data in the file */
    const char *file; /* path of the file holding it (owned by rr_st) */
    const rr_mmap *map; /* the mapping data points into (owned by rr_st) */
} rr_st_tensor;

typedef struct rr_st rr_st; /* one model's tensors, over one or more files */

/* Opens model.safetensors in dir, or model.safetensors.index.json and every shard it names. */
rr_status rr_st_open_dir(const char *dir, rr_st **out);
/* Opens a single safetensors file. */
rr_status rr_st_open_file(const char *path, rr_st **out);
void rr_st_close(rr_st *st);
/* Unmaps every file but keeps its descriptor: rr_st_copy still works, tensor data pointers become
 * NULL. Nothing can fault on a file changed under the process after this. */
void rr_st_unmap(rr_st *st);

/* Looks a tensor up by name; NULL when absent. */
const rr_st_tensor *rr_st_find(const rr_st *st, const char *name);
int rr_st_count(const rr_st *st);
/* The file messages should name: model.safetensors or model.safetensors.index.json. */
const char *rr_st_source(const rr_st *st);
const rr_st_tensor *rr_st_at(const rr_st *st, int i);

/* Copies n bytes at byte offset off of tensor t into dst without mapping its pages (pread). False
 * when the range is outside the tensor or the read fails or comes back short (the file was
 * truncated or removed under the process): dst is then undefined. */
bool rr_st_copy(const rr_st_tensor *t, size_t off, void *dst, size_t n);

#endif
