/*
 * Run one function of a TVM-exported kernel .so without the TVM runtime.
 *
 * There are no armv7 wheels of TVM, so this harness (built with
 * arm-linux-gnueabihf-gcc, run under qemu-arm) stands in for the little of
 * the runtime a compiled PrimFunc touches: the error-raising C API, and the
 * backend function pointers (workspace, parallel launch) the runtime would
 * normally fill in when it loads the library.
 *
 * Usage: harness [--warmup W] [--calls N] LIB.so FUNC SPEC...
 *   SPEC = DTYPE:SHAPE:PATH, e.g. int16:37:/tmp/a.bin, int8:1x8x8x16:/tmp/x.bin,
 *   int32::/tmp/s.bin for a rank-0 array. DTYPE is int8|uint8|int16|int32.
 *   PATH holds the raw little-endian C-order bytes; every array is written back
 *   to its PATH after the call (PrimFuncs write their outputs in place).
 * Exit status: 0 ok, 1 usage/IO error, 2 the kernel returned an error.
 *
 * Default: one unmarked call. With --warmup and/or --calls (measuring under the insncount qemu
 * plugin, tir_armq/measure/insncount.c): W unmarked calls (default 0), then N calls (default 1)
 * each bracketed by region markers, lseek(-1, 0x1C0DE001, SEEK_SET) before and
 * lseek(-1, 0x1C0DE002, SEEK_SET) after. The markers are raw `svc` instructions (syscall 19,
 * lseek) issued from this file, not glibc's lseek: glibc's is Thumb-2 code that goes through
 * _llseek (140) and a syscall helper, so the region would start inside libc with ~20 Thumb
 * instructions of epilogue and stack-protector check. Raw, a region holds only the call itself:
 * this file's ARM code around it (the harness is built with -marm, so it is ARM like the kernel)
 * and whatever the kernel runs. Without the plugin the markers just fail with EBADF.
 * Building with -DHARNESS_LIBC_MARKERS uses glibc's lseek instead (the plugin recognises both).
 *
 * Build: arm-linux-gnueabihf-gcc -O2 -rdynamic -I<tvm_ffi/include> ... -ldl
 * (-rdynamic: the dlopened .so resolves TVMFFIErrorSetRaisedFromCStrParts
 * against this executable.)
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <tvm/ffi/c_api.h>

#define ALIGN 64 /* armv7 kernels assume aligned data: misaligned => SIGBUS */
#define MAX_NDIM 8

/* ---- the runtime pieces the kernel .so links against ------------------- */

static char g_error[4096];

/* Generated code reports failed argument checks etc. through this. */
void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** parts, int32_t num_parts) {
  size_t n = (size_t)snprintf(g_error, sizeof g_error, "%s: ", kind ? kind : "Error");
  for (int32_t i = 0; i < num_parts && n < sizeof g_error; ++i) {
    if (parts[i]) n += (size_t)snprintf(g_error + n, sizeof g_error - n, "%s", parts[i]);
  }
}

void TVMFFIErrorSetRaisedFromCStr(const char* kind, const char* message) {
  TVMFFIErrorSetRaisedFromCStrParts(kind, &message, 1);
}

/* Same signatures as tvm/runtime/c_backend_api.h (not in the tvm_ffi wheel). */
typedef struct {
  void* sync_handle;
  int32_t num_task;
} TVMParallelGroupEnv;
typedef int (*FTVMParallelLambda)(int task_id, TVMParallelGroupEnv* penv, void* cdata);

static void* alloc_workspace(int device_type, int device_id, uint64_t nbytes, int code_hint,
                             int bits_hint) {
  (void)device_type, (void)device_id, (void)code_hint, (void)bits_hint;
  void* p = NULL;
  return posix_memalign(&p, ALIGN, nbytes ? (size_t)nbytes : 1) == 0 ? p : NULL;
}

static int free_workspace(int device_type, int device_id, void* ptr) {
  (void)device_type, (void)device_id;
  free(ptr);
  return 0;
}

/* One task: the lambda splits its range by penv->num_task, so this is exact, just serial. */
static int parallel_launch(FTVMParallelLambda f, void* cdata, int num_task) {
  (void)num_task;
  TVMParallelGroupEnv env = {NULL, 1};
  return f(0, &env, cdata);
}

static int parallel_barrier(int task_id, TVMParallelGroupEnv* penv) {
  (void)task_id, (void)penv;
  return 0;
}

/* The .so holds these as data symbols (function pointers) that the loader must fill. */
static void set_backend_pointer(void* lib, const char* name, void* fn) {
  void** slot = (void**)dlsym(lib, name);
  if (slot) *slot = fn;
}

/* ---- region markers for the counting plugin ---------------------------- */

#define MARK_START 0x1C0DE001
#define MARK_STOP 0x1C0DE002

#if defined(HARNESS_LIBC_MARKERS) || !defined(__arm__) || defined(__thumb__)
static void mark(long offset) { (void)lseek(-1, (off_t)offset, SEEK_SET); }
#else
/* lseek(-1, offset, SEEK_SET) as one ARM-mode `svc`; the kernel (qemu) answers -EBADF. */
static void mark(long offset) {
  register long r0 __asm__("r0") = -1;
  register long r1 __asm__("r1") = offset;
  register long r2 __asm__("r2") = SEEK_SET;
  register long r7 __asm__("r7") = SYS_lseek;
  __asm__ volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory");
}
#endif

/* ---- arrays ------------------------------------------------------------ */

typedef struct {
  const char* path;
  DLTensor t;
  int64_t shape[MAX_NDIM];
  size_t nbytes;
} Array;

static int parse_dtype(const char* s, size_t len, DLDataType* out) {
  static const struct { const char* name; uint8_t code, bits; } k[] = {
      {"int8", kDLInt, 8}, {"uint8", kDLUInt, 8}, {"int16", kDLInt, 16}, {"int32", kDLInt, 32}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i) {
    if (strlen(k[i].name) == len && strncmp(s, k[i].name, len) == 0) {
      out->code = k[i].code, out->bits = k[i].bits, out->lanes = 1;
      return 0;
    }
  }
  return -1;
}

static int parse_spec(char* spec, Array* a) {
  char* c1 = strchr(spec, ':');
  char* c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (!c2 || parse_dtype(spec, (size_t)(c1 - spec), &a->t.dtype) != 0) return -1;
  a->path = c2 + 1;
  a->t.ndim = 0;
  size_t count = 1;
  for (char* p = c1 + 1; p < c2;) {
    char* end;
    long long d = strtoll(p, &end, 10);
    if (end == p || d < 0 || a->t.ndim == MAX_NDIM) return -1;
    a->shape[a->t.ndim++] = d;
    count *= (size_t)d;
    p = (*end == 'x') ? end + 1 : end;
    if (p < c2 && end == p) return -1;
  }
  a->nbytes = count * a->t.dtype.bits / 8;
  a->t.shape = a->shape;
  a->t.strides = NULL; /* compact C order, which is what the generated checks expect */
  a->t.byte_offset = 0;
  a->t.device.device_type = kDLCPU;
  a->t.device.device_id = 0;
  return 0;
}

static int read_array(Array* a) {
  if (posix_memalign(&a->t.data, ALIGN, a->nbytes ? a->nbytes : 1) != 0) return -1;
  FILE* f = fopen(a->path, "rb");
  if (!f) return -1;
  size_t got = fread(a->t.data, 1, a->nbytes, f);
  int extra = fgetc(f) != EOF; /* size mismatch means a shape/dtype mixup on the host */
  fclose(f);
  return got == a->nbytes && !extra ? 0 : -1;
}

static int write_array(const Array* a) {
  FILE* f = fopen(a->path, "wb");
  if (!f) return -1;
  size_t put = fwrite(a->t.data, 1, a->nbytes, f);
  return (fclose(f) == 0 && put == a->nbytes) ? 0 : -1;
}

static int parse_count(const char* s, long min, long* out) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > INT_MAX) return -1;
  *out = v;
  return 0;
}

int main(int argc, char** argv) {
  long warmup = 0, calls = 1;
  int marked = 0; /* --warmup/--calls given: bracket the measured calls with region markers */
  int first = 1;
  while (first + 1 < argc && strncmp(argv[first], "--", 2) == 0) {
    int bad = 1;
    if (strcmp(argv[first], "--warmup") == 0) bad = parse_count(argv[first + 1], 0, &warmup);
    if (strcmp(argv[first], "--calls") == 0) bad = parse_count(argv[first + 1], 1, &calls);
    if (bad) {
      fprintf(stderr, "harness: bad option %s %s\n", argv[first], argv[first + 1]);
      return 1;
    }
    marked = 1;
    first += 2;
  }
  argc -= first - 1;
  argv += first - 1; /* argv[1] is now LIB.so, whatever options came before it */
  if (argc < 3) {
    fprintf(stderr, "usage: harness [--warmup W] [--calls N] LIB.so FUNC DTYPE:SHAPE:PATH...\n");
    return 1;
  }
  int n = argc - 3;
  Array* arrays = calloc((size_t)(n ? n : 1), sizeof(Array));
  TVMFFIAny* args = calloc((size_t)(n ? n : 1), sizeof(TVMFFIAny));
  for (int i = 0; i < n; ++i) {
    if (parse_spec(argv[3 + i], &arrays[i]) != 0) {
      fprintf(stderr, "harness: bad array spec '%s'\n", argv[3 + i]);
      return 1;
    }
    errno = 0;
    if (read_array(&arrays[i]) != 0) {
      fprintf(stderr, "harness: cannot read %zu bytes from %s: %s\n", arrays[i].nbytes,
              arrays[i].path, errno ? strerror(errno) : "size mismatch");
      return 1;
    }
    /* calloc zeroed the 8-byte union; on 32-bit v_ptr fills only its low half. */
    args[i].type_index = kTVMFFIDLTensorPtr;
    args[i].v_ptr = &arrays[i].t;
  }

  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "harness: dlopen failed: %s\n", dlerror());
    return 1;
  }
  set_backend_pointer(lib, "__TVMBackendAllocWorkspace", (void*)alloc_workspace);
  set_backend_pointer(lib, "__TVMBackendFreeWorkspace", (void*)free_workspace);
  set_backend_pointer(lib, "__TVMBackendParallelLaunch", (void*)parallel_launch);
  set_backend_pointer(lib, "__TVMBackendParallelBarrier", (void*)parallel_barrier);

  char sym[512];
  snprintf(sym, sizeof sym, "__tvm_ffi_%s", argv[2]);
  TVMFFISafeCallType fn = (TVMFFISafeCallType)dlsym(lib, sym);
  if (!fn) {
    fprintf(stderr, "harness: symbol %s not found in %s\n", sym, argv[1]);
    return 1;
  }

  TVMFFIAny result;
  for (long k = 0; k < warmup + calls; ++k) {
    int measured = marked && k >= warmup;
    memset(&result, 0, sizeof result);
    result.type_index = kTVMFFINone;
    if (measured) mark(MARK_START);
    int rc = fn(NULL, args, n, &result);
    if (measured) mark(MARK_STOP);
    if (rc != 0) {
      fprintf(stderr, "harness: %s failed: %s\n", argv[2], g_error[0] ? g_error : "(no message)");
      return 2;
    }
  }

  for (int i = 0; i < n; ++i) {
    if (write_array(&arrays[i]) != 0) {
      fprintf(stderr, "harness: cannot write %s\n", arrays[i].path);
      return 1;
    }
  }
  return 0;
}
