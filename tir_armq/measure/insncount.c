/*
 * insncount: a qemu TCG plugin that counts executed guest instructions, exactly and repeatably.
 *
 * Under emulation wall time says nothing about the real board, but the instruction stream does:
 * it is a pure function of the program and its inputs. This plugin reports
 *   - the instructions executed by the whole run,
 *   - the instructions executed inside marked regions (one number per region),
 *   - per translation block (TB): start address, instruction count, executions inside regions and
 *     in the whole run, optionally its machine code (for a later per-block cost model).
 *
 * Built against qemu-plugin.h of qemu 7.2 (plugin API v1; this file needs no glib):
 *   gcc -O2 -Wall -fPIC -shared -I<qemu-src>/include/qemu -o libinsncount.so insncount.c -lpthread
 * Used as:
 *   qemu-aarch64 -plugin libinsncount.so,out=FILE[,blocks=region|all|none][,bytes=on][,threads=on] prog ...
 *
 * Marking a region from the guest: a syscall no real program makes, so that no guest-side support
 * library is needed and any language can do it (Python: os.lseek(-1, 0x1C0DE001, 0)):
 *   lseek(fd=-1, offset=0x1C0DE001, whence=0)   start a region
 *   lseek(fd=-1, offset=0x1C0DE002, whence=0)   stop it
 *   lseek(fd=-1, offset=0x1C0DE003, whence=0)   flush: write the report so far to `out`.K (K = 0, 1,
 *                                                ...), then forget its regions and block executions
 *   lseek(fd=-1, offset=0x1C0DE004, whence=ADDR) split at ADDR: from now on, whenever the block that
 *                                                starts at guest address ADDR is entered inside a
 *                                                region, stop the region, flush, and start a new one
 *                                                (before that block is counted). Pointed at a
 *                                                function an engine calls once per operator
 *                                                (XNNPACK's xnn_run_operator_with_index), it gives
 *                                                one report per operator. ADDR must reach the
 *                                                syscall whole: call syscall(2), not lseek(3),
 *                                                whose `int whence` drops the upper half.
 * Flushing lets one long-lived guest process measure many kernels (a tuning run's candidates) with
 * one report each, instead of paying a process start (seconds under emulation) per kernel.
 * The kernel (here: qemu's syscall emulation) just answers EBADF, so the marker is harmless when the
 * program runs without the plugin or on a real board.
 *
 * What exactly a region contains: every instruction after the start marker's `svc` up to and
 * including the stop marker's `svc`. Reason: counting is per TB and happens when a TB is entered
 * (the whole TB is added at once), and on AArch64/ARM a syscall instruction always ends its TB, so
 * when the syscall callback runs, the counters already include the `svc` and nothing after it.
 *
 * Output (text, one record per line, `#` lines are comments; sorted, so equal runs give equal files):
 *   total_insns N
 *   vcpus_used N
 *   marker_errors N          (a start while a region is open, or a stop without one; ignored)
 *   region_open 0|1          (1: the run ended inside a region, which is then not reported)
 *   regions R
 *   region I N               (R lines, in marking order)
 *   blocks M
 *   block 0xADDR INSNS EXECS_IN_REGIONS EXECS_TOTAL [HEX]   (HEX only with bytes=on)
 *   threads 0xADDR INSNS E0 E1 ... E7 EX  (only with threads=on, right after its block line): the
 *                            block's executions inside regions per guest thread, by vCPU index
 *                            (0: the thread that started the program; EX: vCPUs 8 and up, shared)
 *
 * Known limits, all outside what the measurements here do:
 *   - A TB that stops part-way (a guest fault in its middle, or qemu restarting an instruction after
 *     a write to a page that also holds translated code) is still counted whole.
 *   - With several guest threads, the region flag is process-wide: every thread's instructions are
 *     counted while it is set. Code that waits (spins) runs for as long as host timing makes it:
 *     a multi-thread measurement must tell waiting blocks from work (threads=on gives the per-thread
 *     executions of each block for that) or keep waiting code from running (TVM's thread pool with
 *     TVM_THREAD_POOL_SPIN_COUNT=0 sleeps instead of spinning).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_START 0x1C0DE001u
#define MARK_STOP 0x1C0DE002u
#define MARK_FLUSH 0x1C0DE003u
#define MARK_SPLIT_AT 0x1C0DE004u

/* ------------------------------------------------------------------ per-vCPU counters
 * In linux-user mode every guest thread is a vCPU running on its own host thread. Separate,
 * cache-line padded counters keep the hot path free of atomics and false sharing. vCPU indices are
 * small (qemu reuses freed ones); any beyond the table share one slot updated atomically, which is
 * slower but still exact. */
#define MAX_VCPUS 256
#define THREAD_SLOTS 8 /* per-block per-thread counts: vCPUs 0..7, then one shared slot */

typedef struct {
    uint64_t insns;     /* all instructions this vCPU executed */
    uint64_t in_region; /* those executed while a region was open */
    bool seen;
    char pad[64 - 2 * sizeof(uint64_t) - sizeof(bool)];
} __attribute__((aligned(64))) VcpuCount;

static VcpuCount vcpus[MAX_VCPUS + 1]; /* the last slot is the shared overflow slot */

/* ------------------------------------------------------------------ per-block records
 * One record per distinct block: (start address, instruction count, machine code). The same block
 * can be translated many times (after a TB flush, or in a different CPU mode); keying on its
 * content lets all translations share one record, so the numbers do not depend on how often qemu
 * happened to retranslate. Records are never freed: their address is the exec callback's
 * userdata, which qemu may keep using until exit. */
typedef struct {
    uint64_t vaddr;
    uint32_t n_insns;
    uint32_t n_bytes;
    uint64_t code_hash;
    uint64_t execs_in_region; /* updated atomically: several vCPUs may run the same block */
    uint64_t execs_total;
    uint64_t execs_by_thread[THREAD_SLOTS + 1]; /* in regions; only counted with threads=on */
    uint8_t code[]; /* n_bytes of guest machine code */
} Block;

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static Block **table;       /* open addressing, power-of-two size */
static size_t table_size;   /* slots */
static size_t table_used;   /* records */

/* ------------------------------------------------------------------ regions
 * Region totals are derived from the in_region counters rather than from snapshots of `insns`, so
 * that the per-block in-region execution counts and the region totals always agree exactly:
 * sum(insns x execs_in_region) over blocks == sum of regions. */
static volatile bool region_open; /* read on every TB execution; written only by the syscall cb */
static uint64_t region_base;      /* sum of in_region when the current region opened */
static uint64_t *regions;
static size_t n_regions, cap_regions;
static uint64_t marker_errors;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ options */
static char *out_path;
enum { BLOCKS_NONE, BLOCKS_REGION, BLOCKS_ALL } blocks_mode = BLOCKS_REGION;
static bool write_bytes;
static bool per_thread;
static int64_t lseek_nr = -1;   /* lseek(fd, off, whence): aarch64 62, arm 19 */
static int64_t llseek_nr = -1;  /* _llseek(fd, off_hi, off_lo, result, whence): arm 140 */

static uint64_t fnv1a(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

static uint64_t block_key(uint64_t vaddr, uint32_t n_insns, uint64_t code_hash)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a((const uint8_t *)&vaddr, sizeof vaddr, h);
    h = fnv1a((const uint8_t *)&n_insns, sizeof n_insns, h);
    return h ^ code_hash;
}

static void table_insert(Block *b)
{
    size_t mask = table_size - 1;
    size_t i = block_key(b->vaddr, b->n_insns, b->code_hash) & mask;
    while (table[i]) {
        i = (i + 1) & mask;
    }
    table[i] = b;
}

static void table_grow(void)
{
    Block **old = table;
    size_t old_size = table_size;
    table_size = old_size ? old_size * 2 : 4096;
    table = calloc(table_size, sizeof *table);
    if (!table) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < old_size; i++) {
        if (old[i]) {
            table_insert(old[i]);
        }
    }
    free(old);
}

/* Find or create the record of a block; called at translation time only (rare next to execution). */
static Block *block_for(uint64_t vaddr, uint32_t n_insns, const uint8_t *code, uint32_t n_bytes)
{
    uint64_t code_hash = fnv1a(code, n_bytes, 0xcbf29ce484222325ull);
    pthread_mutex_lock(&blocks_lock);
    if (2 * (table_used + 1) > table_size) {
        table_grow(); /* keep the load factor under 1/2 so probe chains stay short */
    }
    size_t mask = table_size - 1;
    size_t i = block_key(vaddr, n_insns, code_hash) & mask;
    Block *b;
    while ((b = table[i]) != NULL) {
        if (b->vaddr == vaddr && b->n_insns == n_insns && b->n_bytes == n_bytes &&
            b->code_hash == code_hash && memcmp(b->code, code, n_bytes) == 0) {
            pthread_mutex_unlock(&blocks_lock);
            return b;
        }
        i = (i + 1) & mask;
    }
    b = calloc(1, sizeof *b + n_bytes);
    if (!b) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    b->vaddr = vaddr;
    b->n_insns = n_insns;
    b->n_bytes = n_bytes;
    b->code_hash = code_hash;
    memcpy(b->code, code, n_bytes);
    table[i] = b;
    table_used++;
    pthread_mutex_unlock(&blocks_lock);
    return b;
}

/* ------------------------------------------------------------------ callbacks */

static volatile uint64_t split_addr; /* 0: no split point (no block starts at address 0) */
static void split_region(void);

/* Runs on every TB execution: the hot path. */
static void on_tb_exec(unsigned int vcpu_index, void *udata)
{
    Block *b = udata;
    if (b->vaddr == split_addr && region_open) {
        split_region(); /* first, so the block that starts the next segment is counted in it */
    }
    if (vcpu_index < MAX_VCPUS) {
        VcpuCount *v = &vcpus[vcpu_index];
        v->insns += b->n_insns;
        if (region_open) {
            v->in_region += b->n_insns;
            __atomic_fetch_add(&b->execs_in_region, 1, __ATOMIC_RELAXED);
            if (per_thread) {
                unsigned slot = vcpu_index < THREAD_SLOTS ? vcpu_index : THREAD_SLOTS;
                __atomic_fetch_add(&b->execs_by_thread[slot], 1, __ATOMIC_RELAXED);
            }
        }
    } else {
        VcpuCount *v = &vcpus[MAX_VCPUS];
        __atomic_fetch_add(&v->insns, b->n_insns, __ATOMIC_RELAXED);
        if (region_open) {
            __atomic_fetch_add(&v->in_region, b->n_insns, __ATOMIC_RELAXED);
            __atomic_fetch_add(&b->execs_in_region, 1, __ATOMIC_RELAXED);
            if (per_thread) {
                __atomic_fetch_add(&b->execs_by_thread[THREAD_SLOTS], 1, __ATOMIC_RELAXED);
            }
        }
    }
    __atomic_fetch_add(&b->execs_total, 1, __ATOMIC_RELAXED);
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0) {
        return;
    }
    /* Gather the block's machine code: it identifies the block (see Block) and lets a cost model
     * disassemble it later without mapping addresses back to ELF files. */
    uint8_t stack_buf[4096];
    size_t n_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        n_bytes += qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
    }
    uint8_t *code = n_bytes <= sizeof stack_buf ? stack_buf : malloc(n_bytes);
    if (!code) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        size_t sz = qemu_plugin_insn_size(insn);
        memcpy(code + off, qemu_plugin_insn_data(insn), sz);
        off += sz;
    }
    Block *b = block_for(qemu_plugin_tb_vaddr(tb), (uint32_t)n, code, (uint32_t)n_bytes);
    if (code != stack_buf) {
        free(code);
    }
    /* A callback (not an inline add) because the in-region counts need a branch on region_open. */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static uint64_t sum_in_region(void)
{
    uint64_t s = 0;
    for (size_t i = 0; i <= MAX_VCPUS; i++) {
        s += __atomic_load_n(&vcpus[i].in_region, __ATOMIC_RELAXED);
    }
    return s;
}

static void flush_report(void);

/* open_region / close_region: with region_lock held. */
static void open_region(void)
{
    region_base = sum_in_region();
    region_open = true;
}

static void close_region(void)
{
    region_open = false;
    if (n_regions == cap_regions) {
        cap_regions = cap_regions ? 2 * cap_regions : 64;
        regions = realloc(regions, cap_regions * sizeof *regions);
        if (!regions) {
            fprintf(stderr, "insncount: out of memory\n");
            abort();
        }
    }
    regions[n_regions++] = sum_in_region() - region_base;
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    uint64_t offset;
    /* fd is an int: compare 32 bits, the upper half of the register is not defined for it. */
    if (num == lseek_nr && (int32_t)a1 == -1) {
        offset = a2;
    } else if (num == llseek_nr && (int32_t)a1 == -1 && (uint32_t)a2 == 0) {
        offset = (uint32_t)a3; /* 32-bit ARM libc splits the 64-bit offset in two */
    } else {
        return;
    }
    if (offset == MARK_FLUSH) {
        flush_report();
        return;
    }
    if (offset == MARK_SPLIT_AT) {
        split_addr = a3;
        return;
    }
    if (offset != MARK_START && offset != MARK_STOP) {
        return;
    }
    pthread_mutex_lock(&region_lock);
    if (offset == MARK_START) {
        if (region_open) {
            marker_errors++;
        } else {
            open_region();
        }
    } else {
        if (!region_open) {
            marker_errors++;
        } else {
            close_region();
        }
    }
    pthread_mutex_unlock(&region_lock);
}

/* Called from the measuring thread's block callback, like a stop, a flush and a start marker in a
 * row (the same single-thread assumption as flush_report). */
static void split_region(void)
{
    pthread_mutex_lock(&region_lock);
    close_region();
    pthread_mutex_unlock(&region_lock);
    flush_report();
    pthread_mutex_lock(&region_lock);
    open_region();
    pthread_mutex_unlock(&region_lock);
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    vcpus[vcpu_index < MAX_VCPUS ? vcpu_index : MAX_VCPUS].seen = true;
}

static int cmp_block(const void *pa, const void *pb)
{
    const Block *a = *(Block *const *)pa, *b = *(Block *const *)pb;
    if (a->vaddr != b->vaddr) {
        return a->vaddr < b->vaddr ? -1 : 1;
    }
    if (a->n_insns != b->n_insns) {
        return a->n_insns < b->n_insns ? -1 : 1;
    }
    if (a->n_bytes != b->n_bytes) {
        return a->n_bytes < b->n_bytes ? -1 : 1;
    }
    return memcmp(a->code, b->code, a->n_bytes);
}

static void write_report(FILE *f)
{
    uint64_t total = 0;
    unsigned used = 0;
    for (size_t i = 0; i <= MAX_VCPUS; i++) {
        total += vcpus[i].insns;
        used += vcpus[i].seen;
    }
    fprintf(f, "# tir_armq insncount v1\n");
    fprintf(f, "total_insns %" PRIu64 "\n", total);
    fprintf(f, "vcpus_used %u\n", used);
    fprintf(f, "marker_errors %" PRIu64 "\n", marker_errors);
    fprintf(f, "region_open %d\n", region_open ? 1 : 0);
    fprintf(f, "regions %zu\n", n_regions);
    for (size_t i = 0; i < n_regions; i++) {
        fprintf(f, "region %zu %" PRIu64 "\n", i, regions[i]);
    }

    /* Collect, then sort by address: the hash table's order is not meaningful to a reader. */
    size_t n = 0;
    Block **list = malloc((table_used ? table_used : 1) * sizeof *list);
    if (!list) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < table_size; i++) {
        Block *b = table[i];
        if (!b || blocks_mode == BLOCKS_NONE) {
            continue;
        }
        if (blocks_mode == BLOCKS_REGION && b->execs_in_region == 0) {
            continue;
        }
        list[n++] = b;
    }
    qsort(list, n, sizeof *list, cmp_block);
    fprintf(f, "blocks %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        Block *b = list[i];
        fprintf(f, "block 0x%" PRIx64 " %u %" PRIu64 " %" PRIu64, b->vaddr, b->n_insns,
                b->execs_in_region, b->execs_total);
        if (write_bytes) {
            fputc(' ', f);
            for (uint32_t k = 0; k < b->n_bytes; k++) {
                fprintf(f, "%02x", b->code[k]);
            }
        }
        fputc('\n', f);
        if (per_thread) {
            fprintf(f, "threads 0x%" PRIx64 " %u", b->vaddr, b->n_insns);
            for (int t = 0; t <= THREAD_SLOTS; t++) {
                fprintf(f, " %" PRIu64, b->execs_by_thread[t]);
            }
            fputc('\n', f);
        }
    }
    free(list);
}

/* Write a temporary file and rename it, so a reader never sees a half-written report. */
static void write_report_to(const char *path)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "insncount: cannot write %s\n", tmp);
        free(tmp);
        return;
    }
    write_report(f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "insncount: cannot write %s\n", path);
    }
    free(tmp);
}

static uint64_t n_flushes;

/* Called from the syscall callback of the (single) measuring thread: no kernel code runs
 * meanwhile, so resetting the per-block counters races with nothing that matters. */
static void flush_report(void)
{
    pthread_mutex_lock(&region_lock);
    if (out_path) {
        size_t len = strlen(out_path) + 32;
        char *path = malloc(len);
        snprintf(path, len, "%s.%" PRIu64, out_path, n_flushes);
        write_report_to(path);
        free(path);
    } else {
        write_report(stderr);
    }
    n_flushes++;
    n_regions = 0;
    marker_errors = 0;
    pthread_mutex_lock(&blocks_lock);
    for (size_t i = 0; i < table_size; i++) {
        if (table[i]) {
            __atomic_store_n(&table[i]->execs_in_region, 0, __ATOMIC_RELAXED);
            for (int t = 0; t <= THREAD_SLOTS; t++) {
                __atomic_store_n(&table[i]->execs_by_thread[t], 0, __ATOMIC_RELAXED);
            }
        }
    }
    pthread_mutex_unlock(&blocks_lock);
    pthread_mutex_unlock(&region_lock);
}

static void on_atexit(qemu_plugin_id_t id, void *p)
{
    if (!out_path) {
        write_report(stderr);
        return;
    }
    write_report_to(out_path);
}

/* ------------------------------------------------------------------ install */

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (!eq) {
            fprintf(stderr, "insncount: bad option '%s' (want key=value)\n", a);
            return -1;
        }
        size_t klen = (size_t)(eq - a);
        const char *val = eq + 1;
        if (klen == 3 && strncmp(a, "out", 3) == 0) {
            out_path = strdup(val);
        } else if (klen == 6 && strncmp(a, "blocks", 6) == 0) {
            if (strcmp(val, "none") == 0) {
                blocks_mode = BLOCKS_NONE;
            } else if (strcmp(val, "region") == 0) {
                blocks_mode = BLOCKS_REGION;
            } else if (strcmp(val, "all") == 0) {
                blocks_mode = BLOCKS_ALL;
            } else {
                fprintf(stderr, "insncount: blocks=%s (want none, region or all)\n", val);
                return -1;
            }
        } else if (klen == 5 && strncmp(a, "bytes", 5) == 0) {
            if (!qemu_plugin_bool_parse("bytes", val, &write_bytes)) {
                fprintf(stderr, "insncount: bytes=%s (want on or off)\n", val);
                return -1;
            }
        } else if (klen == 7 && strncmp(a, "threads", 7) == 0) {
            if (!qemu_plugin_bool_parse("threads", val, &per_thread)) {
                fprintf(stderr, "insncount: threads=%s (want on or off)\n", val);
                return -1;
            }
        } else {
            fprintf(stderr, "insncount: unknown option '%s'\n", a);
            return -1;
        }
    }

    /* The marker is a syscall, and syscall numbers differ between guest architectures. */
    if (strcmp(info->target_name, "aarch64") == 0) {
        lseek_nr = 62;
    } else if (strcmp(info->target_name, "arm") == 0) {
        lseek_nr = 19;
        llseek_nr = 140;
    } else {
        fprintf(stderr, "insncount: guest %s: region markers not supported, counting totals only\n",
                info->target_name);
    }

    table_grow();
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
