/*
 * libazsdp: the AZ-SDP JNI library (Linux x86_64 only).
 *
 * Java counterpart: io.azsdp.nativeio.NativeLib. Every entry point takes and
 * returns primitives only, so the hot calls (futex, cross-memory copies,
 * buffer addresses) never allocate and never throw: failures come back as a
 * negative errno which the Java side turns into whatever it needs.
 *
 * Layout (keep new features in their own section):
 *   1. common definitions
 *   2. library lifecycle (JNI_OnLoad)
 *   3. process information
 *   4. direct buffers
 *   5. futex (cross-process wait/wake on a word in shared memory)
 *   6. cross-memory attach (process_vm_readv / process_vm_writev)
 *   7. memfd (anonymous shared memory that another process can map)
 *   8. memory protection (mprotect + SIGSEGV handler: asynchronous zero-copy send)
 *
 * Built with -fvisibility=hidden: only JNIEXPORT symbols are exported.
 */

/* ===================================================================== */
/* 1. Common definitions                                                  */
/* ===================================================================== */

#define _GNU_SOURCE /* process_vm_readv/writev, memfd_create, syscall */

#include <jni.h>

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

/* Java longs carry raw addresses; go through uintptr_t to avoid warnings. */
#define PTR(addr) ((void *)(uintptr_t)(addr))

/* The JNI names; one macro so the class name is spelled only once. */
#define AZ_JNI(ret, name) \
    JNIEXPORT ret JNICALL Java_io_azsdp_nativeio_NativeLib_##name

/* ===================================================================== */
/* 2. Library lifecycle                                                   */
/* ===================================================================== */

/* Declares the JNI version we need. Process-wide set-up that must happen
 * once per load (e.g. installing signal handlers) belongs here. */
JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm UNUSED, void *reserved UNUSED) {
    return JNI_VERSION_1_8;
}

/* ===================================================================== */
/* 3. Process information                                                 */
/* ===================================================================== */

/* Used by the Java loader as a smoke test (must equal ProcessHandle's pid)
 * and by peers to address us with process_vm_readv. */
AZ_JNI(jint, pid0)(JNIEnv *env UNUSED, jclass cls UNUSED) {
    return (jint)getpid();
}

/* Granularity of mmap/mprotect; shm regions are sized in whole pages. */
AZ_JNI(jint, pageSize0)(JNIEnv *env UNUSED, jclass cls UNUSED) {
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (jint)ps : -errno;
}

/* ===================================================================== */
/* 4. Direct buffers                                                      */
/* ===================================================================== */

/* Base address of a direct buffer (position is ignored). Returns 0 when the
 * JVM cannot provide one (heap buffer); the Java wrapper rejects heap
 * buffers before getting here anyway. */
AZ_JNI(jlong, address0)(JNIEnv *env, jclass cls UNUSED, jobject buffer) {
    return (jlong)(uintptr_t)(*env)->GetDirectBufferAddress(env, buffer);
}

/* ===================================================================== */
/* 5. Futex                                                               */
/* ===================================================================== */

/*
 * The word lives in memory mapped by two processes (memfd / shm file), so
 * these are deliberately SHARED futexes: FUTEX_PRIVATE_FLAG would key the
 * wait queue on (mm, virtual address) and a waiter in another process would
 * never be found. Shared futexes are keyed on the backing page instead, which
 * also makes them work when the two processes map it at different addresses.
 * The address must be 4-byte aligned (otherwise -EINVAL).
 */

/* FUTEX_WAIT takes a RELATIVE timeout (unlike FUTEX_WAIT_BITSET), which is
 * what the Java API exposes; NULL means wait forever. */
AZ_JNI(jint, futexWait0)(JNIEnv *env UNUSED, jclass cls UNUSED,
                         jlong address, jint expected, jlong timeoutNanos) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeoutNanos > 0) {
        ts.tv_sec = (time_t)(timeoutNanos / 1000000000LL);
        ts.tv_nsec = (long)(timeoutNanos % 1000000000LL);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, PTR(address), FUTEX_WAIT, (int)expected, tsp,
                      NULL, 0);
    /* EINTR is returned as is: the caller re-checks its condition and loops,
     * exactly as it must for spurious wake-ups. */
    return rc == 0 ? 0 : -errno;
}

AZ_JNI(jint, futexWake0)(JNIEnv *env UNUSED, jclass cls UNUSED,
                         jlong address, jint count) {
    long rc = syscall(SYS_futex, PTR(address), FUTEX_WAKE, (int)count, NULL,
                      NULL, 0);
    return rc >= 0 ? (jint)rc : -errno;
}

/* ===================================================================== */
/* 6. Cross-memory attach                                                 */
/* ===================================================================== */

/*
 * One copy between two address spaces, no shared mapping needed. The kernel
 * validates both ranges itself: a bad address yields EFAULT, never a signal,
 * so a misbehaving peer cannot crash this JVM through these calls.
 * Permission follows ptrace rules (same uid and no Yama restriction, or
 * CAP_SYS_PTRACE), hence -EPERM in locked-down environments.
 */
static jlong cma_copy(int write, jint pid, jlong local, jlong remote,
                      jlong length) {
    if (length < 0)
        return -EINVAL;
    jlong done = 0;
    while (done < length) {
        struct iovec l = {PTR(local + done), (size_t)(length - done)};
        struct iovec r = {PTR(remote + done), (size_t)(length - done)};
        ssize_t n = write ? process_vm_writev((pid_t)pid, &l, 1, &r, 1, 0)
                          : process_vm_readv((pid_t)pid, &l, 1, &r, 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* A short count means the copy stopped early (a fault part-way, or
         * the kernel's per-call cap of ~2 GiB): retry from there, so that a
         * real fault is reported as -EFAULT by the next call. Zero would be
         * no progress at all; do not spin on it. */
        if (n == 0)
            return -EFAULT;
        done += n;
    }
    return done;
}

AZ_JNI(jlong, readRemote0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint pid,
                           jlong localAddress, jlong remoteAddress,
                           jlong length) {
    return cma_copy(0, pid, localAddress, remoteAddress, length);
}

AZ_JNI(jlong, writeRemote0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint pid,
                            jlong localAddress, jlong remoteAddress,
                            jlong length) {
    return cma_copy(1, pid, localAddress, remoteAddress, length);
}

/* ===================================================================== */
/* 7. memfd                                                               */
/* ===================================================================== */

/* glibc >= 2.27 declares memfd_create() (and MFD_CLOEXEC) in <sys/mman.h>;
 * fall back to the raw system call on older headers. */
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define memfd_create(name, flags) ((int)syscall(SYS_memfd_create, (name), (flags)))
#endif

/* An anonymous, file-backed shared memory object with no path to clean up.
 * CLOEXEC so it does not leak into processes the JVM forks; peers get it by
 * opening /proc/<pid>/fd/<fd> (or via SCM_RIGHTS). */
AZ_JNI(jint, memfdCreate0)(JNIEnv *env, jclass cls UNUSED, jstring name,
                           jlong size) {
    const char *cname = (*env)->GetStringUTFChars(env, name, NULL);
    if (cname == NULL)
        return -ENOMEM; /* OutOfMemoryError is pending */
    int fd = memfd_create(cname, MFD_CLOEXEC);
    int err = errno;
    (*env)->ReleaseStringUTFChars(env, name, cname);
    if (fd < 0)
        return -err;
    if (ftruncate(fd, (off_t)size) != 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* No retry on EINTR: on Linux the fd is released even then, and retrying
 * could close a descriptor another thread has just been given. */
AZ_JNI(jint, close0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint fd) {
    return close(fd) == 0 ? 0 : -errno;
}

/* ---- shareable buffers: memory the peer maps and copies from directly -- */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#define AZ_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* A sealed memfd of size bytes mapped read-write here. The seals forbid
 * shrinking, so a peer that maps it can never take SIGBUS from a truncation.
 * Returns the fd (kept open: the peer opens /proc/<pid>/fd/<fd>), and in
 * out[0] the address, in out[1] the inode that identifies it to the peer. */
AZ_JNI(jint, shareableCreate0)(JNIEnv *env, jclass cls UNUSED, jlong size,
                               jlongArray out) {
    if (size <= 0)
        return -EINVAL;
    int fd = memfd_create("azsdp-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    struct stat st;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, AZ_SEALS) != 0
        || fstat(fd, &st) != 0
        || (p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     fd, 0)) == MAP_FAILED) {
        int err = errno;
        close(fd);
        return -err;
    }
    jlong v[2] = {(jlong)(uintptr_t)p, (jlong)st.st_ino};
    (*env)->SetLongArrayRegion(env, out, 0, 2, v);
    return fd;
}

/* Maps the peer's shareable buffer read-only, after checking that fd still
 * names the same sealed memfd (inode) and holds at least size bytes. */
AZ_JNI(jlong, shareableMapPeer0)(JNIEnv *env UNUSED, jclass cls UNUSED,
                                 jint pid, jint fd, jlong ino, jlong size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, (int)fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -errno;
    struct stat st;
    int err = 0;
    if (fstat(f, &st) != 0)
        err = errno;
    else if ((jlong)st.st_ino != ino || !S_ISREG(st.st_mode)
             || st.st_size < size)
        err = ESTALE;
    else if ((fcntl(f, F_GET_SEALS) & F_SEAL_SHRINK) == 0)
        err = EPERM;
    void *p = err ? MAP_FAILED
                  : mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, f, 0);
    if (!err && p == MAP_FAILED)
        err = errno;
    close(f);
    return err ? -err : (jlong)(uintptr_t)p;
}

AZ_JNI(jint, unmap0)(JNIEnv *env UNUSED, jclass cls UNUSED, jlong address,
                     jlong size) {
    return munmap(PTR(address), (size_t)size) == 0 ? 0 : -errno;
}

/* A direct ByteBuffer over memory this library mapped. */
AZ_JNI(jobject, newBuffer0)(JNIEnv *env, jclass cls UNUSED, jlong address,
                            jlong size) {
    return (*env)->NewDirectByteBuffer(env, PTR(address), size);
}

/* Plain memcpy between mappings of this process (the caller checked both). */
AZ_JNI(void, copy0)(JNIEnv *env UNUSED, jclass cls UNUSED, jlong dst,
                    jlong src, jlong length) {
    memcpy(PTR(dst), PTR(src), (size_t)length);
}

/* ===================================================================== */
/* 8. Memory protection                                                   */
/* ===================================================================== */

/*
 * The asynchronous-send groundwork of AZ-SDP: send() makes the application's
 * buffer read-only (mprotect PROT_READ) instead of copying it, the peer pulls
 * the bytes with a one-sided READ, and an application store into the buffer
 * before the READ is done traps here and waits for it.
 *
 * A protected RANGE is a page-aligned [start, end) tied to
 *   - a completion WORD (32-bit, usually in memory shared with the peer: the
 *     peer increments it and futex-wakes it when its READ is done) and a
 *     TARGET: complete when (int)(*word - target) >= 0;
 *   - a PEER pid (0 = none): if kill(peer, 0) fails with ESRCH the range is
 *     complete too (the connection is dead; nobody may hang on it);
 *   - a RELEASED flag (release(), the failure clean-up path).
 * The 32-bit word right after the completion word counts the threads that
 * futex-wait on it (any process): the completer stores the new value, then
 * futex-wakes only when that count is non-zero (Dekker: both sides seq_cst),
 * which saves it a system call per completion nobody waits for.
 *
 * ---- The table (lock-free, fixed capacity, mmap'ed by protectionInit) ----
 * One 64-byte slot per range. slot.ctl is the only word ever CAS'ed:
 *     ctl = gen << 4 | released << 3 | state
 *     FREE -> SETUP (claim: gen+1) -> ACTIVE -> RETIRING -> RETIRED -> FREE
 *                 \-> FREE (protect failed before publishing)
 * The other fields are written only in SETUP, i.e. after the gen bump, so a
 * reader takes a seqlock-style snapshot (ctl, fields, ctl again: same gen, or
 * the slot was recycled meanwhile and the snapshot is discarded). A range id
 * is (gen & 0x7fff) << 16 | index, so a stale id (already released, slot
 * maybe reused) is recognised; it aliases only after 32768 reuses of a slot.
 * Scans stop at az_hwm (1 + highest index ever claimed); slots are claimed
 * lowest first, so scans stay short while few ranges are in flight.
 *
 * ---- Per-page accounting: derived, not stored ----
 * A page must be read-only exactly while an ACTIVE slot covers it. Nothing
 * counts anything: whoever retires a range (release(), or a faulting thread
 * once the range is complete) moves it ACTIVE -> RETIRING, scans the table
 * and makes writable the pieces of the range that no ACTIVE slot covers, then
 * moves it to RETIRED. The only race is with a protect() of an overlapping
 * range, resolved Dekker-style (all ctl accesses are seq_cst):
 *     retirer:   ctl := RETIRING;  scan for ACTIVE;    mprotect(RW); RETIRED
 *     protector: ctl := ACTIVE;    scan for RETIRING overlapping, wait each
 *                                  until it is past RETIRING;  mprotect(RO)
 * Either the retirer's scan sees the new range ACTIVE (and leaves its pages
 * alone), or the protector's scan sees the retirer RETIRING or later, waits
 * for its mprotect(RW) to be done, and only then mprotect(RO)s: the RO always
 * lands last. Two retirers never block each other (RETIRING does not count as
 * covering), and a retirer never waits, so the protector's wait is short.
 *
 * ---- The SIGSEGV handler ----
 * Installed once by protectionInit (from Java, i.e. after HotSpot installed
 * its own), chaining to the previous handler. Only a WRITE fault with
 * si_code SEGV_ACCERR can be ours (x86 error code bit 1); everything else
 * (implicit null checks: MAPERR; safepoint polls and SafeFetch: reads) is
 * forwarded at once with the same (sig, info, ucontext). For a write fault:
 *   - an ACTIVE slot covers the page: wait until every ACTIVE slot covering
 *     it is complete (a short bounded spin, then shared FUTEX_WAIT on the
 *     word in 50 ms slices, re-checking word, released flag and peer liveness
 *     after each), retire them (above), and return: the store re-executes (if
 *     a new range protected the page meanwhile, it faults again and waits);
 *   - only RETIRING slots cover it: wait for them to finish, return;
 *   - no slot covers it: either the range was released between the fault
 *     and our scan (the page is writable again: return, the store retries),
 *     or it is not ours. Told apart by probing the page without touching its
 *     contents: unreadable (HotSpot's guard pages, poll page: PROT_NONE) ->
 *     forward; writable (atomic add of 0 via FUTEX_WAKE_OP) -> retry; read-only
 *     -> forward only if no protect/retire ran meanwhile (az_busy/az_seq),
 *     else retry.
 * Async-signal-safety: no locks, no malloc, no stdio; only __atomic builtins,
 * raw syscalls (futex, mprotect, kill, clock_gettime, sched_yield; and
 * sigaction/raise when forwarding to SIG_DFL) and snapshots of the table.
 * errno is preserved.
 *
 * ---- Lifetime of the completion word ----
 * A waiter may hold a snapshot of a slot while that slot is released. It
 * only dereferences the word (and the waiter count after it) inside a reader
 * section (slot.readers > 0, re-checking that the range is still ACTIVE
 * inside it; a futex sleep on the word is one too), and release() frees the
 * slot only once no reader section is open: so the caller may unmap the word
 * as soon as release() returned (never before).
 *
 * ---- JVM rule ----
 * A thread blocked in the handler is "in Java" (or "in VM") to HotSpot: it
 * holds up every safepoint, so its release must never depend on a Java
 * thread of this JVM: it comes from the word (another process, native code)
 * or from the peer's death. release() is for failure clean-up only.
 */

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <ucontext.h>

enum {
    AZ_FREE = 0,     /* unused */
    AZ_SETUP = 1,    /* claimed by protect(), fields being written */
    AZ_ACTIVE = 2,   /* in flight: its pages are (being made) read-only */
    AZ_RETIRING = 3, /* complete; its pages are being made writable */
    AZ_RETIRED = 4   /* complete, pages done; waiting for release() */
};
#define AZ_STATE(c) ((c) & 7u)
#define AZ_RELEASED 8u
#define AZ_GEN(c) ((c) >> 4)
#define AZ_CTL(gen, bits) (((gen) << 4) | (bits))
#define AZ_ID_BITS 16
#define AZ_ID_GEN_MASK 0x3fffu
/* Bit 30 of protect's result: that call changed page protection (mprotect).
 * Every entry point taking an id ignores it. */
#define AZ_ID_CHANGED (1u << 30)
#define AZ_MAX_RANGES (1 << AZ_ID_BITS)
#define AZ_SLICE_NS 50000000L /* futex wait slice: re-check peer / release */
#define AZ_SPINS 64           /* ~ a few microseconds of pause before sleeping */
#define AZ_WAITER_SLOTS 256   /* start times of current handler waits (more
                               * simultaneous waiters are counted, not timed) */

struct az_range {
    uint32_t ctl;
    uint32_t readers; /* open reader sections (see "lifetime of the word") */
    int32_t target;
    int32_t peer;
    uint64_t start;
    uint64_t end;
    uint64_t word;
    uint32_t pdone;  /* generation whose pages are read-only (mprotect done) */
    uint32_t settled; /* generation the peer reported read (see settle0) */
    uint64_t pad[2]; /* one cache line per slot */
};
_Static_assert(sizeof(struct az_range) == 64, "one cache line per slot");

/* A consistent copy of a slot's immutable fields. */
struct az_snap {
    uint32_t ctl;
    uint32_t idx;
    uintptr_t start;
    uintptr_t end;
    int32_t *word;
    int32_t target;
    int32_t peer;
};

static struct az_range *az_tab; /* NULL until protectionInit; then constant */
static uint32_t az_cap;
static uint32_t az_hwm;
static uintptr_t az_page;
static struct sigaction az_prev;
static pthread_mutex_t az_init_lock = PTHREAD_MUTEX_INITIALIZER;

/* Protection operations in progress / completed: lets the handler tell "not
 * ours" from "changed under our feet". */
static uint32_t az_busy;
static uint32_t az_seq;

/* Metrics. */
static int64_t az_faults;
static int64_t az_wait_ns;
static int32_t az_waiters;
static int32_t az_sleepers; /* threads in (or about to enter) FUTEX_WAIT */
static int64_t az_wait_start[AZ_WAITER_SLOTS];
/* Fault waits by duration: bucket 0 = resolved while spinning, bucket b >= 1 =
 * waited [2^(b-1), 2^b) ns (the last bucket takes everything longer). */
#define AZ_HIST_BUCKETS 40
static int64_t az_wait_hist[AZ_HIST_BUCKETS];

#define AZ_LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define AZ_LDR(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define AZ_ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define AZ_STR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define AZ_CAS(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define AZ_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

static int64_t az_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void az_pause(void) {
    __builtin_ia32_pause();
}

/* Seqlock-style snapshot of slot idx; 0 when it holds no range (FREE, SETUP)
 * or was recycled while being read. */
static int az_read(uint32_t idx, struct az_snap *s) {
    struct az_range *r = &az_tab[idx];
    uint32_t c = AZ_LD(&r->ctl);
    if (AZ_STATE(c) < AZ_ACTIVE)
        return 0;
    s->start = (uintptr_t)AZ_LDR(&r->start);
    s->end = (uintptr_t)AZ_LDR(&r->end);
    s->word = (int32_t *)(uintptr_t)AZ_LDR(&r->word);
    s->target = AZ_LDR(&r->target);
    s->peer = AZ_LDR(&r->peer);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (AZ_GEN(AZ_LDR(&r->ctl)) != AZ_GEN(c))
        return 0;
    s->ctl = c;
    s->idx = idx;
    return 1;
}

static int az_covers(const struct az_snap *s, uintptr_t page) {
    return s->start <= page && page < s->end;
}

/* errno-neutral: the handler preserves errno itself, Java callers ignore it. */
static int az_peer_dead(int32_t peer) {
    if (peer <= 0)
        return 0;
    if (kill((pid_t)peer, 0) != 0)
        return errno == ESRCH;
    /* A killed peer stays a zombie until its parent reaps it, and that
     * parent may be this JVM, whose reaper is a Java thread: a safepoint
     * held up by the waiter itself would keep it unreaped. So the state
     * letter after "pid (comm) " counts too (open/read: async-signal-safe). */
    char path[32], buf[512];
    int n = 0, i;
    for (int v = peer, d = 1000000000; d > 0; d /= 10)
        if (v / d || n || d == 1)
            buf[n++] = (char)('0' + v / d % 10);
    memcpy(path, "/proc/", 6);
    memcpy(path + 6, buf, (size_t)n);
    memcpy(path + 6 + n, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t len = read(fd, buf, sizeof buf);
    close(fd);
    for (i = (int)len - 1; i >= 0 && buf[i] != ')'; i--) {
    }
    return i >= 0 && i + 2 < len && (buf[i + 2] == 'Z' || buf[i + 2] == 'X');
}

/* Is the range complete? *seen gets the word's value for a futex wait (only
 * meaningful when 0 is returned). The word is read inside a reader section
 * so that release() cannot return (and the caller unmap it) meanwhile. */
static int az_done(const struct az_snap *s, int check_peer, int32_t *seen) {
    struct az_range *r = &az_tab[s->idx];
    int done;
    if (AZ_LD(&r->settled) == AZ_GEN(s->ctl))
        return 1;
    AZ_ADD(&r->readers, 1);
    uint32_t c = AZ_LD(&r->ctl);
    if (AZ_GEN(c) != AZ_GEN(s->ctl) || AZ_STATE(c) != AZ_ACTIVE
        || (c & AZ_RELEASED)) {
        done = 1; /* released, retired (only complete ranges are) or recycled */
    } else {
        int32_t v = __atomic_load_n(s->word, __ATOMIC_ACQUIRE);
        *seen = v;
        done = (int32_t)((uint32_t)v - (uint32_t)s->target) >= 0;
    }
    AZ_ADD(&r->readers, -1);
    if (!done && check_peer)
        done = az_peer_dead(s->peer);
    return done;
}

/* Makes writable the pages of [s, e) that no ACTIVE slot other than self
 * covers: walk from s; skip what an ACTIVE range covers, unprotect up to the
 * next ACTIVE range's start. O(hwm) per step, steps <= 2 * overlaps + 1. */
static void az_unprotect(uint32_t self, uintptr_t s, uintptr_t e) {
    uintptr_t p = s;
    while (p < e) {
        uintptr_t cover = 0, next = e;
        uint32_t n = AZ_LD(&az_hwm);
        for (uint32_t i = 0; i < n; i++) {
            struct az_snap o;
            if (i == self || !az_read(i, &o) || AZ_STATE(o.ctl) != AZ_ACTIVE)
                continue;
            if (az_covers(&o, p)) {
                if (o.end > cover)
                    cover = o.end;
            } else if (o.start > p && o.start < next) {
                next = o.start;
            }
        }
        if (cover != 0) {
            p = cover;
            continue;
        }
        mprotect(PTR(p), next - p, PROT_READ | PROT_WRITE);
        p = next;
    }
}

/* Retires slot idx of generation gen (the caller knows it is complete);
 * returns once it is RETIRED (by us or by a concurrent retirer) or gone. */
static void az_retire(uint32_t idx, uint32_t gen) {
    struct az_range *r = &az_tab[idx];
    for (;;) {
        uint32_t c = AZ_LD(&r->ctl);
        if (AZ_GEN(c) != gen)
            return;
        if (AZ_STATE(c) == AZ_ACTIVE) {
            AZ_ADD(&az_busy, 1);
            if (AZ_CAS(&r->ctl, &c, (c & ~7u) | AZ_RETIRING)) {
                az_unprotect(idx, (uintptr_t)AZ_LDR(&r->start),
                             (uintptr_t)AZ_LDR(&r->end));
                /* release() may set the released bit meanwhile: keep it. */
                c = AZ_LD(&r->ctl);
                while (!AZ_CAS(&r->ctl, &c, (c & ~7u) | AZ_RETIRED)) {
                }
                AZ_ADD(&az_seq, 1);
                AZ_ADD(&az_busy, -1);
                return;
            }
            AZ_ADD(&az_busy, -1);
        } else if (AZ_STATE(c) == AZ_RETIRING) {
            sched_yield(); /* the retirer never blocks: it is nearly done */
        } else {
            return;
        }
    }
}

/* release(): RETIRED -> FREE once no reader section is open. Until FREE the
 * slot cannot be reused, so only readers of this generation can hold it up,
 * and they are short: a new one sees the range is no longer ACTIVE and never
 * touches the word; a sleeping one is woken here (it may have gone to sleep
 * just after release()'s first wake-up; the word is mapped until we return). */
static void az_free(uint32_t idx, uint32_t gen) {
    struct az_range *r = &az_tab[idx];
    for (;;) {
        uint32_t c = AZ_LD(&r->ctl);
        if (AZ_GEN(c) != gen || AZ_STATE(c) == AZ_FREE)
            return;
        if (AZ_STATE(c) != AZ_RETIRED) {
            az_retire(idx, gen);
        } else if (AZ_LD(&r->readers) != 0) {
            syscall(SYS_futex, (int32_t *)(uintptr_t)AZ_LDR(&r->word),
                    FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
            sched_yield();
        } else if (AZ_CAS(&r->ctl, &c, AZ_CTL(gen, AZ_FREE))) {
            return;
        }
    }
}

/* --------------------------------------------------------- the handler */

/* 1 when the word at addr can be read. A private FUTEX_WAIT with a zero
 * timeout reads it (EFAULT if it cannot) and returns: at once with EAGAIN
 * unless the word happens to hold the unlikely expected value (then
 * ETIMEDOUT after a timer tick, ~60 us). No side effect, and futex is never
 * filtered by seccomp (unlike process_vm_readv in some container profiles). */
static int az_readable(uintptr_t addr) {
    struct timespec zero = {0, 0};
    long rc = syscall(SYS_futex, PTR(addr & ~(uintptr_t)3),
                      FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0x5a3c96e1, &zero,
                      NULL, 0);
    return rc == 0 || errno != EFAULT;
}

/* Without changing the contents: 1 when the page is writable. FUTEX_WAKE_OP
 * does an atomic "add 0" on uaddr2 (EFAULT if not writable); nobody waits
 * on the private dummy word, and the comparison (old < -2048) practically
 * never wakes a waiter on uaddr2 (which would only be a spurious wake-up). */
static int az_writable(uintptr_t addr) {
    static int32_t dummy;
    long rc = syscall(SYS_futex, &dummy, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0,
                      (void *)0, PTR(addr & ~(uintptr_t)3),
                      FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_LT, -2048));
    return rc >= 0;
}

/* 1 when a range that is not yet released has this completion word. */
static int az_word_in_use(uintptr_t word) {
    uint32_t n = AZ_LD(&az_hwm);
    for (uint32_t i = 0; i < n; i++) {
        struct az_snap s;
        if (az_read(i, &s) && !(s.ctl & AZ_RELEASED)
            && (uintptr_t)s.word == word)
            return 1;
    }
    return 0;
}

/* Counts ACTIVE and RETIRING slots covering page. */
static void az_cover(uintptr_t page, int *active, int *retiring) {
    *active = *retiring = 0;
    uint32_t n = AZ_LD(&az_hwm);
    for (uint32_t i = 0; i < n; i++) {
        struct az_snap s;
        if (!az_read(i, &s) || !az_covers(&s, page))
            continue;
        if (AZ_STATE(s.ctl) == AZ_ACTIVE)
            (*active)++;
        else if (AZ_STATE(s.ctl) == AZ_RETIRING)
            (*retiring)++;
    }
}

/* One bounded wait for range s: spin a little, then one futex slice. */
static void az_wait_slice(const struct az_snap *s, int64_t slice_ns) {
    int32_t v = 0;
    for (int i = 0; i < AZ_SPINS; i++) {
        if (az_done(s, 0, &v))
            return;
        az_pause();
    }
    /* Counted before the last check, so that release() either sees us
     * (and wakes) or we see its RELEASED bit (Dekker, both seq_cst). */
    AZ_ADD(&az_sleepers, 1);
    /* The whole sleep is a reader section: the word and the waiter count
     * after it stay mapped (release() waits for it, waking us meanwhile). */
    struct az_range *r = &az_tab[s->idx];
    AZ_ADD(&r->readers, 1);
    uint32_t c = AZ_LD(&r->ctl);
    if (AZ_GEN(c) == AZ_GEN(s->ctl) && AZ_STATE(c) == AZ_ACTIVE
        && !(c & AZ_RELEASED)) {
        int32_t *waiting = s->word + 1;
        AZ_ADD(waiting, 1); /* before the last look at the word: the peer
                             * then either sees us and wakes, or we see it */
        v = AZ_LD(s->word);
        if ((int32_t)((uint32_t)v - (uint32_t)s->target) < 0
            && !az_peer_dead(s->peer)) {
            struct timespec ts = {(time_t)(slice_ns / 1000000000LL),
                                  (long)(slice_ns % 1000000000LL)};
            /* Shared futex: the peer wakes it through its own mapping.
             * EAGAIN (the word moved), EINTR, ETIMEDOUT: all mean
             * "re-check". */
            syscall(SYS_futex, s->word, FUTEX_WAIT, v, &ts, NULL, 0);
        }
        AZ_ADD(waiting, -1);
    }
    AZ_ADD(&r->readers, -1);
    AZ_ADD(&az_sleepers, -1);
}

/* Blocks until no incomplete ACTIVE range covers page. */
static void az_wait_page(uintptr_t page) {
    int64_t t0 = 0;
    int slot = -1;
    for (;;) {
        struct az_snap s;
        int pending = 0;
        int32_t v;
        uint32_t n = AZ_LD(&az_hwm);
        for (uint32_t i = 0; i < n && !pending; i++) {
            if (az_read(i, &s) && AZ_STATE(s.ctl) == AZ_ACTIVE
                && az_covers(&s, page) && !az_done(&s, 1, &v))
                pending = 1;
        }
        if (!pending)
            break;
        if (t0 == 0) {
            t0 = az_now();
            if (t0 == 0)
                t0 = 1;
            AZ_ADD(&az_waiters, 1);
            for (int i = 0; i < AZ_WAITER_SLOTS && slot < 0; i++) {
                int64_t zero = 0;
                if (AZ_CAS(&az_wait_start[i], &zero, t0))
                    slot = i;
            }
        }
        az_wait_slice(&s, AZ_SLICE_NS);
    }
    int bucket = 0;
    if (t0 != 0) {
        int64_t waited = az_now() - t0;
        AZ_ADD(&az_wait_ns, waited);
        if (slot >= 0)
            AZ_ST(&az_wait_start[slot], 0);
        AZ_ADD(&az_waiters, -1);
        bucket = waited > 0 ? 64 - __builtin_clzll((uint64_t) waited) : 1;
        if (bucket >= AZ_HIST_BUCKETS)
            bucket = AZ_HIST_BUCKETS - 1;
    }
    AZ_ADD(&az_wait_hist[bucket], 1);
}

/* Retires the complete ACTIVE ranges covering page. */
static void az_retire_page(uintptr_t page) {
    uint32_t n = AZ_LD(&az_hwm);
    for (uint32_t i = 0; i < n; i++) {
        struct az_snap s;
        int32_t v;
        if (az_read(i, &s) && AZ_STATE(s.ctl) == AZ_ACTIVE
            && az_covers(&s, page) && az_done(&s, 1, &v))
            az_retire(i, AZ_GEN(s.ctl));
    }
}

/* 1: handled (return and let the store re-execute); 0: not ours. */
static int az_fault(uintptr_t addr) {
    uintptr_t page = addr & ~(az_page - 1);
    for (;;) {
        int active, retiring;
        az_cover(page, &active, &retiring);
        if (active || retiring) {
            AZ_ADD(&az_faults, 1);
            if (active) {
                az_wait_page(page);
                az_retire_page(page);
            } else {
                /* Being made writable right now: no wait worth timing. */
                AZ_ADD(&az_wait_hist[0], 1);
                for (int i = 0; i < 1000 && retiring; i++) {
                    sched_yield();
                    az_cover(page, &active, &retiring);
                }
            }
            return 1;
        }
        if (!az_readable(addr))
            return 0; /* PROT_NONE or unmapped: never one of our pages */
        uint32_t seq = AZ_LD(&az_seq);
        uint32_t busy = AZ_LD(&az_busy);
        if (az_writable(addr))
            return 1; /* released since the fault: retry the store */
        az_cover(page, &active, &retiring);
        if (active || retiring)
            continue; /* protected again meanwhile */
        if (busy == 0 && AZ_LD(&az_seq) == seq)
            return 0; /* read-only and stable, but not by us */
        return 1;     /* a protection change raced with us: retry */
    }
}

static int az_write_fault(void *ucv) {
#ifdef REG_ERR
    const ucontext_t *uc = ucv;
    return uc == NULL || (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)ucv;
    return 1;
#endif
}

/* Hands a fault that is not ours to the previous handler. When that was
 * SIG_DFL/SIG_IGN (no JVM handler; or libjsig, which reports the
 * application's "previous" handler, i.e. SIG_DFL, and calls us as a chained
 * handler), restore the default and return: the faulting instruction runs
 * again and faults again, now with the default action (or, under libjsig,
 * HotSpot's fatal-error report with the original siginfo). A sent SIGSEGV
 * (si_code <= 0) would not recur by itself: raise it again. */
static void az_forward(int sig, siginfo_t *info, void *ucv) {
    if (az_prev.sa_handler == SIG_DFL || az_prev.sa_handler == SIG_IGN) {
        struct sigaction dfl;
        __builtin_memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        if (info == NULL || info->si_code <= 0)
            raise(sig); /* pending until we return; then the default action */
        return;
    }
    if (az_prev.sa_flags & SA_SIGINFO)
        az_prev.sa_sigaction(sig, info, ucv);
    else
        az_prev.sa_handler(sig);
}

static void az_segv(int sig, siginfo_t *info, void *ucv) {
    int saved_errno = errno;
    if (info != NULL && info->si_code == SEGV_ACCERR && az_write_fault(ucv)
        && __atomic_load_n(&az_tab, __ATOMIC_ACQUIRE) != NULL
        && az_fault((uintptr_t)info->si_addr)) {
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    az_forward(sig, info, ucv);
}

/* ------------------------------------------------------------ JNI entries */

AZ_JNI(jint, protectionInit0)(JNIEnv *env UNUSED, jclass cls UNUSED,
                              jint maxRanges) {
    if (maxRanges < 1 || maxRanges > AZ_MAX_RANGES)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&az_init_lock);
    if (az_tab != NULL)
        goto out; /* idempotent: the first capacity stays */
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) {
        rc = -EINVAL;
        goto out;
    }
    size_t size = (size_t)maxRanges * sizeof(struct az_range);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    az_cap = (uint32_t)maxRanges;
    az_page = (uintptr_t)ps;
    /* Read the previous action BEFORE installing ours: our handler may run
     * (another thread's safepoint poll...) the instant sigaction installs
     * it, and must then find az_prev complete. */
    struct sigaction old, ours, check;
    if (sigaction(SIGSEGV, NULL, &old) != 0) {
        rc = -errno;
        munmap(mem, size);
        goto out;
    }
    az_prev = old;
    __builtin_memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = az_segv;
    /* Same mask and flags as the handler we chain to (HotSpot's: all
     * signals but the synchronous error ones blocked, SA_RESTART). */
    ours.sa_mask = old.sa_mask;
    ours.sa_flags = (old.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    if (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)
        ours.sa_flags = SA_SIGINFO | SA_RESTART;
    __atomic_store_n(&az_tab, (struct az_range *)mem, __ATOMIC_RELEASE);
    if (sigaction(SIGSEGV, &ours, &check) != 0) {
        rc = -errno;
        __atomic_store_n(&az_tab, NULL, __ATOMIC_RELEASE);
        munmap(mem, size);
        goto out;
    }
    if (check.sa_sigaction != old.sa_sigaction)
        az_prev = check; /* replaced in between (by nobody sane): chain to that */
out:
    pthread_mutex_unlock(&az_init_lock);
    return rc;
}

AZ_JNI(jint, protect0)(JNIEnv *env UNUSED, jclass cls UNUSED, jlong address,
                       jlong length, jlong completionAddress, jint target,
                       jint peerPid) {
    struct az_range *tab = __atomic_load_n(&az_tab, __ATOMIC_ACQUIRE);
    if (tab == NULL)
        return -ENODEV;
    uintptr_t mask = az_page - 1;
    if (address <= 0 || length <= 0 || ((uintptr_t)address & mask) != 0
        || ((uintptr_t)length & mask) != 0 || address > INT64_MAX - length
        || completionAddress == 0 || (completionAddress & 3) != 0
        || peerPid < 0)
        return -EINVAL;
    /* The handler will read the word and count itself in the next one:
     * fail now (EFAULT) if it cannot. Two system calls: skipped when a range
     * not yet released uses the same word (it was checked then, and stays
     * allocated until that release), as every send of a connection does. */
    if (!az_word_in_use((uintptr_t)completionAddress)
        && (!az_readable((uintptr_t)completionAddress)
            || !az_writable((uintptr_t)completionAddress + 4)))
        return -EFAULT;

    uint32_t idx, gen = 0;
    for (idx = 0; idx < az_cap; idx++) {
        uint32_t c = AZ_LD(&tab[idx].ctl);
        if (AZ_STATE(c) != AZ_FREE)
            continue;
        gen = (AZ_GEN(c) + 1) & 0x0fffffffu;
        if (AZ_CAS(&tab[idx].ctl, &c, AZ_CTL(gen, AZ_SETUP)))
            break;
    }
    if (idx == az_cap)
        return -ENOSPC;
    uint32_t hwm = AZ_LD(&az_hwm);
    while (hwm < idx + 1 && !AZ_CAS(&az_hwm, &hwm, idx + 1)) {
    }
    struct az_range *r = &tab[idx];
    __atomic_thread_fence(__ATOMIC_RELEASE);
    AZ_STR(&r->start, (uint64_t)address);
    AZ_STR(&r->end, (uint64_t)(address + length));
    AZ_STR(&r->word, (uint64_t)completionAddress);
    AZ_STR(&r->target, (int32_t)target);
    AZ_STR(&r->peer, (int32_t)peerPid);
    AZ_STR(&r->settled, UINT32_MAX); /* no generation: they fit 28 bits */

    AZ_ADD(&az_busy, 1);
    AZ_ST(&r->ctl, AZ_CTL(gen, AZ_ACTIVE));
    /* Dekker with az_retire: wait out overlapping retirers (see top). A range
     * already read-only under an ACTIVE slot that covers all of ours needs no
     * mprotect (a sender re-sending one buffer, pipelined): that slot's
     * retirer will see ours ACTIVE and leave our pages alone. Not when a
     * retirer was seen: it may have unprotected some of them. */
    uintptr_t s = (uintptr_t)address, e = (uintptr_t)(address + length);
    uint32_t n = AZ_LD(&az_hwm);
    int covered = 0, retirer = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct az_snap o;
        if (i == idx || !az_read(i, &o) || o.end <= s || o.start >= e)
            continue;
        while (AZ_STATE(o.ctl) == AZ_RETIRING) {
            retirer = 1;
            sched_yield();
            uint32_t c = AZ_LD(&tab[i].ctl);
            if (AZ_GEN(c) != AZ_GEN(o.ctl))
                break;
            o.ctl = c;
        }
        if (AZ_STATE(o.ctl) == AZ_ACTIVE && o.start <= s && e <= o.end
            && AZ_LD(&tab[i].pdone) == AZ_GEN(o.ctl)
            && AZ_LD(&tab[i].ctl) == o.ctl)
            covered = 1;
    }
    int err = covered && !retirer
                  ? 0
                  : mprotect(PTR(address), (size_t)length, PROT_READ) == 0 ? 0 : errno;
    if (err == 0)
        AZ_ST(&r->pdone, gen);
    AZ_ADD(&az_seq, 1);
    AZ_ADD(&az_busy, -1);
    if (err != 0) {
        az_retire(idx, gen); /* undo whatever part got protected */
        az_free(idx, gen);
        return -err;
    }
    return (jint)(((gen & AZ_ID_GEN_MASK) << AZ_ID_BITS) | idx
                  | (covered && !retirer ? 0 : AZ_ID_CHANGED));
}

/* -EINVAL: not an id; 0: stale (released already); 1: live, *s filled. */
static int az_lookup(jint id, struct az_snap *s) {
    struct az_range *tab = __atomic_load_n(&az_tab, __ATOMIC_ACQUIRE);
    uint32_t idx = (uint32_t)id & (AZ_MAX_RANGES - 1);
    if (tab == NULL || id < 0 || idx >= az_cap)
        return -EINVAL;
    if (!az_read(idx, s))
        return 0;
    if ((AZ_GEN(s->ctl) & AZ_ID_GEN_MASK)
        != (((uint32_t)id & ~AZ_ID_CHANGED) >> AZ_ID_BITS))
        return 0;
    return 1;
}

AZ_JNI(jint, release0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint rangeId) {
    struct az_snap s;
    int rc = az_lookup(rangeId, &s);
    if (rc <= 0)
        return rc;
    struct az_range *r = &az_tab[s.idx];
    uint32_t gen = AZ_GEN(s.ctl);
    uint32_t c = AZ_LD(&r->ctl);
    while (AZ_GEN(c) == gen && AZ_STATE(c) >= AZ_ACTIVE && !(c & AZ_RELEASED)) {
        if (AZ_CAS(&r->ctl, &c, c | AZ_RELEASED)) {
            /* Wake handler and awaitRange waiters (the word is still mapped:
             * the caller has not had release() return yet); a system call
             * per completed send saved when nobody sleeps. */
            if (AZ_LD(&az_sleepers) != 0)
                syscall(SYS_futex, s.word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
            break;
        }
    }
    az_retire(s.idx, gen);
    az_free(s.idx, gen);
    return 0;
}

AZ_JNI(jint, isComplete0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint rangeId) {
    struct az_snap s;
    int32_t v;
    int rc = az_lookup(rangeId, &s);
    if (rc <= 0)
        return rc < 0 ? rc : 1;
    return az_done(&s, 1, &v);
}

/* The peer reported the range read (its RdmaRdCompl): complete from now on,
 * whatever the word says. So a store into it never waits for a word that a
 * peer which lies leaves behind, and the caller need not read the word (a
 * cache line the peer writes on every read it completes). A stale id is a
 * no-op: a slot reused since has another generation. */
AZ_JNI(jint, settle0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint rangeId) {
    struct az_snap s;
    int rc = az_lookup(rangeId, &s);
    if (rc <= 0)
        return rc;
    AZ_ST(&az_tab[s.idx].settled, AZ_GEN(s.ctl));
    return 0;
}

/* 1 while the range is live and ACTIVE, i.e. its pages are still read-only
 * under it (a complete range stays so until a store retires it or it is
 * released); 0 otherwise. */
AZ_JNI(jint, isProtected0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint rangeId) {
    struct az_snap s;
    int rc = az_lookup(rangeId, &s);
    if (rc <= 0)
        return rc;
    return AZ_STATE(s.ctl) == AZ_ACTIVE && !(s.ctl & AZ_RELEASED);
}

AZ_JNI(jint, awaitRange0)(JNIEnv *env UNUSED, jclass cls UNUSED, jint rangeId,
                          jlong timeoutNanos) {
    int64_t deadline = timeoutNanos > 0 ? az_now() + timeoutNanos : 0;
    for (;;) {
        struct az_snap s;
        int32_t v;
        int rc = az_lookup(rangeId, &s);
        if (rc <= 0)
            return rc;
        if (az_done(&s, 1, &v))
            return 0;
        int64_t slice = AZ_SLICE_NS;
        if (deadline != 0) {
            int64_t left = deadline - az_now();
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < slice)
                slice = left;
        }
        az_wait_slice(&s, slice);
    }
}

AZ_JNI(jlong, protectionFaults0)(JNIEnv *env UNUSED, jclass cls UNUSED) {
    return AZ_LD(&az_faults);
}

AZ_JNI(jlong, protectionWaitNanos0)(JNIEnv *env UNUSED, jclass cls UNUSED) {
    return AZ_LD(&az_wait_ns);
}

AZ_JNI(jint, protectionWaiters0)(JNIEnv *env UNUSED, jclass cls UNUSED) {
    return AZ_LD(&az_waiters);
}

AZ_JNI(jint, protectionWaitHistogram0)(JNIEnv *env, jclass cls UNUSED,
                                       jlongArray out) {
    jlong copy[AZ_HIST_BUCKETS];
    jsize n = (*env)->GetArrayLength(env, out);
    if (n > AZ_HIST_BUCKETS)
        n = AZ_HIST_BUCKETS;
    for (jsize i = 0; i < n; i++)
        copy[i] = AZ_LD(&az_wait_hist[i]);
    (*env)->SetLongArrayRegion(env, out, 0, n, copy);
    return n;
}

AZ_JNI(jlong, protectionOldestWaitStart0)(JNIEnv *env UNUSED,
                                          jclass cls UNUSED) {
    int64_t oldest = 0;
    for (int i = 0; i < AZ_WAITER_SLOTS; i++) {
        int64_t t = AZ_LD(&az_wait_start[i]);
        if (t != 0 && (oldest == 0 || t < oldest))
            oldest = t;
    }
    return oldest;
}
