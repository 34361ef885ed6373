/* Power-loss journal (reliability plan R3): preloaded into a process, it records every write,
 * truncation and sync of the files whose path starts with $POWERCUT_PREFIX, and every change to
 * the directory entries there, so that after a kill -9 tests/reliability/powercut.py can undo
 * what was never synced, as a power cut would.
 *
 * Each change appends one record to $POWERCUT_JOURNAL (O_APPEND, before the real change):
 *   'W' path ino offset length old_size old_length old_bytes new_bytes
 *   'T' path ino new_size old_size cut_length cut_bytes  (ftruncate; cut_bytes: what a shrink drops)
 *   'S' path ino is_directory                           (fsync/fdatasync returned 0)
 *   'N' path ino                                        (open with O_CREAT made a new file)
 *   'M' path / 'D' path                                 (mkdir / rmdir)
 *   'R' path new_length backup_length new backup        (rename path -> new)
 *   'U' path backup_length backup                       (unlink)
 * Lengths are little-endian u32 (path) and u64 (the rest). A rename over a file, and an unlink,
 * first hard-link the file that goes to a backup name in "$POWERCUT_JOURNAL.keep/", so that the
 * cut can bring it back; backup is empty when a rename replaced nothing. Paths are absolute,
 * their directory resolved (as /proc/self/fd gives a synced directory's path). "-shm" files
 * are not recorded: SQLite rebuilds the WAL index from the WAL when the first connection opens
 * after a crash.
 *
 * SIGUSR2 arms a crash point: the process kills itself (SIGKILL) right after its next recorded
 * change, which no sync has covered yet, e.g. halfway through writing a commit's WAL frames.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdirat)(int, const char *, mode_t);

static const char *prefix;
static size_t prefix_length;
static int journal = -1;
static char backups[PATH_MAX];
static unsigned long backup_count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t crash_armed;

static void arm_crash(int signal_number) {
    (void)signal_number;
    crash_armed = 1;
}

/* After a recorded change has reached the file system: the armed crash point. */
static void crash_if_armed(void) {
    if (crash_armed)
        kill(getpid(), SIGKILL);
}

__attribute__((constructor)) static void powercut_init(void) {
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_renameat2 = dlsym(RTLD_NEXT, "renameat2");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
    const char *path = getenv("POWERCUT_JOURNAL");
    prefix = getenv("POWERCUT_PREFIX");
    if (path && prefix && *prefix) {
        prefix_length = strlen(prefix);
        journal = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        snprintf(backups, sizeof backups, "%s.keep", path);
        struct sigaction action = {.sa_handler = arm_crash, .sa_flags = SA_RESTART};
        sigemptyset(&action.sa_mask);
        sigaction(SIGUSR2, &action, NULL);
    }
}

static int recorded_path(const char *path, size_t length) {
    if (length < prefix_length || memcmp(path, prefix, prefix_length) != 0)
        return 0;
    return !(length >= 4 && strcmp(path + length - 4, "-shm") == 0);
}

/* The open file's path into `path`; its length, or 0 when it has none or we record nothing. */
static size_t path_of(int fd, char *path, size_t size) {
    if (journal < 0 || fd == journal)
        return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    return (size_t)n;
}

/* The open file's path when it is one we record, else 0. */
static int tracked(int fd, char *path, size_t size) {
    size_t n = path_of(fd, path, size);
    return n && recorded_path(path, n);
}

/* The open directory the prefix lies in (its sync makes names there last), else 0. */
static int holds_prefix(int fd, char *path, size_t size) {
    size_t n = path_of(fd, path, size);
    return n && n < prefix_length && memcmp(prefix, path, n) == 0 && prefix[n] == '/' &&
           strchr(prefix + n + 1, '/') == NULL;
}

/* `name` (relative to `dirfd`) as an absolute path whose directory is resolved, when it is one
 * we record; else 0. The directory must exist; the last component need not. */
static int tracked_name(int dirfd, const char *name, char *path, size_t size) {
    if (journal < 0 || name == NULL || *name == 0)
        return 0;
    char joined[PATH_MAX], directory[PATH_MAX];
    if (name[0] == '/') {
        if (strlen(name) >= sizeof joined)
            return 0;
        strcpy(joined, name);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base))
                return 0;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n <= 0)
                return 0;
            base[n] = 0;
        }
        int written = snprintf(joined, sizeof joined, "%s/%s", base, name);
        if (written <= 0 || (size_t)written >= sizeof joined)
            return 0;
    }
    size_t length = strlen(joined);
    while (length > 1 && joined[length - 1] == '/')
        joined[--length] = 0;
    char *slash = strrchr(joined, '/');
    if (slash == NULL)
        return 0;
    *slash = 0;
    if (!realpath(*joined ? joined : "/", directory))
        return 0;
    int written = snprintf(path, size, "%s/%s", strcmp(directory, "/") ? directory : "",
                           slash + 1);
    if (written <= 0 || (size_t)written >= size)
        return 0;
    return recorded_path(path, (size_t)written);
}

/* One record, appended with one writev so that threads never interleave inside it. */
static void append(char kind, const char *path, const uint64_t *numbers, int count,
                   const void *first, size_t first_length, const void *second,
                   size_t second_length) {
    uint32_t path_length = (uint32_t)strlen(path);
    struct iovec parts[] = {
        {&kind, 1},
        {&path_length, sizeof path_length},
        {(void *)path, path_length},
        {(void *)numbers, sizeof(uint64_t) * (size_t)count},
        {(void *)first, first_length},
        {(void *)second, second_length},
    };
    size_t total = 0;
    for (int i = 0; i < 6; i++)
        total += parts[i].iov_len;
    if (writev(journal, parts, 6) != (ssize_t)total)
        abort(); /* a journal with a hole would make the cut wrong: stop loudly instead */
}

static uint64_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t inode(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static void record_write(int fd, const char *path, const void *buffer, size_t length,
                         off_t offset) {
    uint64_t old_size = file_size(fd);
    uint64_t old_length = 0;
    if ((uint64_t)offset < old_size)
        old_length = old_size - (uint64_t)offset < length ? old_size - (uint64_t)offset : length;
    char *old = malloc(old_length ? old_length : 1);
    if (!old)
        abort();
    if (old_length && pread(fd, old, old_length, offset) != (ssize_t)old_length)
        abort();
    uint64_t numbers[] = {inode(fd), (uint64_t)offset, length, old_size, old_length};
    append('W', path, numbers, 5, old, old_length, buffer, length);
    free(old);
}

ssize_t pwrite64(int fd, const void *buffer, size_t length, off_t offset) {
    char path[PATH_MAX];
    if (!tracked(fd, path, sizeof path))
        return real_pwrite64(fd, buffer, length, offset);
    pthread_mutex_lock(&lock);
    record_write(fd, path, buffer, length, offset);
    ssize_t written = real_pwrite64(fd, buffer, length, offset);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return written;
}

ssize_t pwrite(int fd, const void *buffer, size_t length, off_t offset) {
    return pwrite64(fd, buffer, length, offset);
}

ssize_t write(int fd, const void *buffer, size_t length) {
    char path[PATH_MAX];
    if (!tracked(fd, path, sizeof path))
        return real_write(fd, buffer, length);
    pthread_mutex_lock(&lock);
    int flags = fcntl(fd, F_GETFL);
    off_t offset = (flags >= 0 && (flags & O_APPEND)) ? (off_t)file_size(fd)
                                                      : lseek(fd, 0, SEEK_CUR);
    record_write(fd, path, buffer, length, offset);
    ssize_t written = real_write(fd, buffer, length);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return written;
}

int ftruncate64(int fd, off_t size) {
    char path[PATH_MAX];
    if (!tracked(fd, path, sizeof path))
        return real_ftruncate64(fd, size);
    pthread_mutex_lock(&lock);
    uint64_t old_size = file_size(fd);
    uint64_t cut = old_size > (uint64_t)size ? old_size - (uint64_t)size : 0;
    char *dropped = malloc(cut ? cut : 1);
    if (!dropped)
        abort();
    if (cut && pread(fd, dropped, cut, size) != (ssize_t)cut)
        abort();
    uint64_t numbers[] = {inode(fd), (uint64_t)size, old_size, cut};
    append('T', path, numbers, 4, dropped, cut, NULL, 0);
    free(dropped);
    int result = real_ftruncate64(fd, size);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return result;
}

int ftruncate(int fd, off_t size) { return ftruncate64(fd, size); }

/* The lock is held across the sync, so every change recorded before its 'S' happened before
 * the sync began (another thread's change cannot slip in between the sync and its record). */
static int synced(int fd, int (*sync)(int)) {
    char path[PATH_MAX];
    if (!tracked(fd, path, sizeof path) && !holds_prefix(fd, path, sizeof path))
        return sync(fd);
    pthread_mutex_lock(&lock);
    int result = sync(fd);
    if (result == 0) {
        struct stat st;
        int is_directory = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        uint64_t numbers[] = {is_directory ? 0 : (uint64_t)st.st_ino, (uint64_t)is_directory};
        append('S', path, numbers, 2, NULL, 0, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return result;
}

int fsync(int fd) { return synced(fd, real_fsync); }

int fdatasync(int fd) { return synced(fd, real_fdatasync); }

/* Directory entries. Each is recorded under the lock, around the real call, and only when the
 * call succeeded (a failed one changed nothing). */

static int created(int dirfd, const char *name, int flags, mode_t mode) {
    char path[PATH_MAX];
    if (!(flags & O_CREAT) || !tracked_name(dirfd, name, path, sizeof path))
        return real_openat64(dirfd, name, flags, mode);
    pthread_mutex_lock(&lock);
    struct stat st;
    int existed = lstat(path, &st) == 0;
    int fd = real_openat64(dirfd, name, flags, mode);
    if (fd >= 0 && !existed) {
        uint64_t numbers[] = {inode(fd)};
        append('N', path, numbers, 1, NULL, 0, NULL, 0);
        crash_if_armed();
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

/* The mode argument of an open call, present only when the flags ask for one. */
#define MODE_ARGUMENT(flags)                                                                  \
    ({                                                                                        \
        va_list arguments;                                                                    \
        va_start(arguments, flags);                                                           \
        mode_t mode = ((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE               \
                          ? va_arg(arguments, mode_t) : 0;                                    \
        va_end(arguments);                                                                    \
        mode;                                                                                 \
    })

int open64(const char *name, int flags, ...) {
    return created(AT_FDCWD, name, flags, MODE_ARGUMENT(flags));
}

int open(const char *name, int flags, ...) {
    return created(AT_FDCWD, name, flags, MODE_ARGUMENT(flags));
}

int openat64(int dirfd, const char *name, int flags, ...) {
    return created(dirfd, name, flags, MODE_ARGUMENT(flags));
}

int openat(int dirfd, const char *name, int flags, ...) {
    return created(dirfd, name, flags, MODE_ARGUMENT(flags));
}

/* A hard link to `path` under a fresh backup name, written to `backup` ("" when there is no
 * such file). */
static void keep_copy(const char *path, char *backup, size_t size) {
    struct stat st;
    backup[0] = 0;
    if (lstat(path, &st) != 0 || S_ISDIR(st.st_mode))
        return;
    real_mkdirat(AT_FDCWD, backups, 0700);
    int written = snprintf(backup, size, "%s/%lu", backups, ++backup_count);
    if (written <= 0 || (size_t)written >= size || link(path, backup) != 0)
        abort(); /* without it the cut could not bring the file back */
}

int renameat2(int old_dirfd, const char *old_name, int new_dirfd, const char *new_name,
              unsigned int flags) {
    char old_path[PATH_MAX], new_path[PATH_MAX], backup[PATH_MAX];
    int old_tracked = tracked_name(old_dirfd, old_name, old_path, sizeof old_path);
    int new_tracked = tracked_name(new_dirfd, new_name, new_path, sizeof new_path);
    if (!old_tracked && !new_tracked)
        return real_renameat2(old_dirfd, old_name, new_dirfd, new_name, flags);
    if (!old_tracked || !new_tracked || flags)
        abort(); /* moves into or out of the recorded tree, exchanges: not modelled */
    pthread_mutex_lock(&lock);
    keep_copy(new_path, backup, sizeof backup);
    int result = real_renameat2(old_dirfd, old_name, new_dirfd, new_name, flags);
    if (result == 0) {
        uint64_t numbers[] = {strlen(new_path), strlen(backup)};
        append('R', old_path, numbers, 2, new_path, numbers[0], backup, numbers[1]);
        crash_if_armed();
    } else if (backup[0]) {
        unlink(backup);
    }
    pthread_mutex_unlock(&lock);
    return result;
}

int renameat(int old_dirfd, const char *old_name, int new_dirfd, const char *new_name) {
    return renameat2(old_dirfd, old_name, new_dirfd, new_name, 0);
}

int rename(const char *old_name, const char *new_name) {
    return renameat2(AT_FDCWD, old_name, AT_FDCWD, new_name, 0);
}

int unlinkat(int dirfd, const char *name, int flags) {
    char path[PATH_MAX], backup[PATH_MAX] = "";
    if (!tracked_name(dirfd, name, path, sizeof path))
        return real_unlinkat(dirfd, name, flags);
    pthread_mutex_lock(&lock);
    if (!(flags & AT_REMOVEDIR))
        keep_copy(path, backup, sizeof backup);
    int result = real_unlinkat(dirfd, name, flags);
    if (result == 0 && (flags & AT_REMOVEDIR)) {
        append('D', path, NULL, 0, NULL, 0, NULL, 0);
    } else if (result == 0) {
        uint64_t numbers[] = {strlen(backup)};
        append('U', path, numbers, 1, backup, numbers[0], NULL, 0);
    } else if (backup[0]) {
        unlink(backup);
    }
    if (result == 0)
        crash_if_armed();
    pthread_mutex_unlock(&lock);
    return result;
}

int unlink(const char *name) { return unlinkat(AT_FDCWD, name, 0); }

int rmdir(const char *name) { return unlinkat(AT_FDCWD, name, AT_REMOVEDIR); }

int mkdirat(int dirfd, const char *name, mode_t mode) {
    char path[PATH_MAX];
    if (!tracked_name(dirfd, name, path, sizeof path))
        return real_mkdirat(dirfd, name, mode);
    pthread_mutex_lock(&lock);
    int result = real_mkdirat(dirfd, name, mode);
    if (result == 0) {
        append('M', path, NULL, 0, NULL, 0, NULL, 0);
        crash_if_armed();
    }
    pthread_mutex_unlock(&lock);
    return result;
}

int mkdir(const char *name, mode_t mode) { return mkdirat(AT_FDCWD, name, mode); }
