/* Minimal runtime linked into every foxnb AOT library: the subset of numba's NRT that
 * numba-generated code calls (allocation, destruction, reshape), plus foxnb_release().
 * The MemInfo layout must match numba's: numba-generated code reads refct and data directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))

typedef void (*NRT_dtor_function)(void *ptr, size_t size, void *info);

typedef struct MemInfo {
    size_t refct;
    NRT_dtor_function dtor;
    void *dtor_info;
    void *data;
    size_t size;
    void *external_allocator;
} NRT_MemInfo;

HIDDEN void *NRT_Allocate(size_t size) { return malloc(size); }
HIDDEN void *NRT_Allocate_External(size_t size, void *allocator) { (void)allocator; return malloc(size); }
HIDDEN void *NRT_Reallocate(void *ptr, size_t size) { return realloc(ptr, size); }
HIDDEN void NRT_Free(void *ptr) { free(ptr); }

HIDDEN void NRT_MemInfo_init(NRT_MemInfo *mi, void *data, size_t size, NRT_dtor_function dtor,
                             void *dtor_info, void *external_allocator) {
    mi->refct = 1;
    mi->dtor = dtor;
    mi->dtor_info = dtor_info;
    mi->data = data;
    mi->size = size;
    mi->external_allocator = external_allocator;
}

HIDDEN NRT_MemInfo *NRT_MemInfo_new(void *data, size_t size, NRT_dtor_function dtor, void *info) {
    NRT_MemInfo *mi = (NRT_MemInfo *)malloc(sizeof(NRT_MemInfo));
    if (mi) NRT_MemInfo_init(mi, data, size, dtor, info, NULL);
    return mi;
}

static NRT_MemInfo *alloc_aligned(size_t size, unsigned align) {
    if (align == 0) align = 1;
    char *base = (char *)malloc(sizeof(NRT_MemInfo) + size + 2 * (size_t)align);
    if (!base) return NULL;
    uintptr_t start = (uintptr_t)(base + sizeof(NRT_MemInfo));
    uintptr_t rem = start % align;
    void *data = (void *)(start + (rem ? align - rem : 0));
    NRT_MemInfo_init((NRT_MemInfo *)base, data, size, NULL, NULL, NULL);
    return (NRT_MemInfo *)base;
}

HIDDEN NRT_MemInfo *NRT_MemInfo_alloc(size_t size) { return alloc_aligned(size, 1); }
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_safe(size_t size) { return alloc_aligned(size, 1); }
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_aligned(size_t size, unsigned align) {
    return alloc_aligned(size, align);
}
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_safe_aligned(size_t size, unsigned align) {
    return alloc_aligned(size, align);
}
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_safe_aligned_external(size_t size, unsigned align,
                                                            void *allocator) {
    (void)allocator;
    return alloc_aligned(size, align);
}

static void varsize_dtor(void *ptr, size_t size, void *info) {
    (void)size; (void)info;
    free(ptr);
}

HIDDEN NRT_MemInfo *NRT_MemInfo_new_varsize(size_t size) {
    void *data = malloc(size);
    if (!data) return NULL;
    return NRT_MemInfo_new(data, size, varsize_dtor, NULL);
}
HIDDEN void *NRT_MemInfo_varsize_alloc(NRT_MemInfo *mi, size_t size) {
    mi->data = malloc(size); mi->size = size; return mi->data;
}
HIDDEN void *NRT_MemInfo_varsize_realloc(NRT_MemInfo *mi, size_t size) {
    mi->data = realloc(mi->data, size); mi->size = size; return mi->data;
}
HIDDEN void NRT_MemInfo_varsize_free(NRT_MemInfo *mi, void *ptr) {
    free(ptr);
    if (ptr == mi->data) mi->data = NULL;
}

/* meminfo whose data is freed after a type-specific dtor ran (lists, sort buffers ...) */
static void varsize_custom_dtor(void *ptr, size_t size, void *info) {
    if (info) ((NRT_dtor_function)info)(ptr, size, NULL);
    free(ptr);
}
HIDDEN NRT_MemInfo *NRT_MemInfo_new_varsize_dtor(size_t size, NRT_dtor_function dtor) {
    void *data = malloc(size);
    if (!data) return NULL;
    return NRT_MemInfo_new(data, size, varsize_custom_dtor, (void *)dtor);
}

/* meminfo + data in one block with a type-specific dtor (structured values) */
static void custom_dtor(void *ptr, size_t size, void *info) {
    if (info) ((NRT_dtor_function)info)(ptr, size, NULL);
}
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_dtor(size_t size, NRT_dtor_function dtor) {
    NRT_MemInfo *mi = alloc_aligned(size, 16);
    if (mi) { mi->dtor = custom_dtor; mi->dtor_info = (void *)dtor; }
    return mi;
}
HIDDEN NRT_MemInfo *NRT_MemInfo_alloc_dtor_safe(size_t size, NRT_dtor_function dtor) {
    return NRT_MemInfo_alloc_dtor(size, dtor);
}

HIDDEN void NRT_MemInfo_call_dtor(NRT_MemInfo *mi) {
    if (mi->dtor) mi->dtor(mi->data, mi->size, mi->dtor_info);
    free(mi);
}
HIDDEN void NRT_MemInfo_destroy(NRT_MemInfo *mi) { free(mi); }
HIDDEN void *NRT_MemInfo_data(NRT_MemInfo *mi) { return mi->data; }
HIDDEN size_t NRT_MemInfo_size(NRT_MemInfo *mi) { return mi->size; }

/* Drop one reference to an array returned by a foxnb function (NULL is ignored). */
EXPORT void foxnb_release(void *meminfo) {
    NRT_MemInfo *mi = (NRT_MemInfo *)meminfo;
    if (mi && __atomic_sub_fetch(&mi->refct, 1, __ATOMIC_ACQ_REL) == 0) NRT_MemInfo_call_dtor(mi);
}

/* numpy's _attempt_nocopy_reshape, as numba's helper library ships it (BSD licence). */
HIDDEN int numba_attempt_nocopy_reshape(int64_t nd, const int64_t *dims, const int64_t *strides,
                                        int64_t newnd, const int64_t *newdims,
                                        int64_t *newstrides, int64_t itemsize, int is_f_order) {
    int64_t olddims[32], oldstrides[32];
    int64_t oi, oj, ok, ni, nj, nk, np_, op;
    int64_t oldnd = 0;
    for (oi = 0; oi < nd; oi++) {
        if (dims[oi] != 1) { olddims[oldnd] = dims[oi]; oldstrides[oldnd] = strides[oi]; oldnd++; }
    }
    np_ = 1;
    for (ni = 0; ni < newnd; ni++) np_ *= newdims[ni];
    op = 1;
    for (oi = 0; oi < oldnd; oi++) op *= olddims[oi];
    if (np_ != op) return 0;
    if (np_ == 0) return 0;
    oi = 0; oj = 1; ni = 0; nj = 1;
    while (ni < newnd && oi < oldnd) {
        np_ = newdims[ni]; op = olddims[oi];
        while (np_ != op) {
            if (np_ < op) np_ *= newdims[nj++]; else op *= olddims[oj++];
        }
        for (ok = oi; ok < oj - 1; ok++) {
            if (is_f_order) { if (oldstrides[ok + 1] != olddims[ok] * oldstrides[ok]) return 0; }
            else if (oldstrides[ok] != olddims[ok + 1] * oldstrides[ok + 1]) return 0;
        }
        if (is_f_order) {
            newstrides[ni] = oldstrides[oi];
            for (nk = ni + 1; nk < nj; nk++) newstrides[nk] = newstrides[nk - 1] * newdims[nk - 1];
        } else {
            newstrides[nj - 1] = oldstrides[oj - 1];
            for (nk = nj - 1; nk > ni; nk--) newstrides[nk - 1] = newstrides[nk] * newdims[nk];
        }
        ni = nj++; oi = oj++;
    }
    int64_t last_stride = (ni >= 1) ? newstrides[ni - 1] : itemsize;
    if (is_f_order && ni >= 1) last_stride *= newdims[ni - 1];
    for (nk = ni; nk < newnd; nk++) newstrides[nk] = last_stride;
    return 1;
}
