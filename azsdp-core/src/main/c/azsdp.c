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
 *   8. memory protection (reserved for mprotect + SIGSEGV handler, issue 3)
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

/* ===================================================================== */
/* 8. Memory protection                                                   */
/* ===================================================================== */

/* Reserved for issue 3 (mprotect + SIGSEGV handler). */
