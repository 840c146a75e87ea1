/* cmd_seal.c - cai seal, cai unseal, cai inspect. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/codec.h"
#include "hf/import.h"
#include "common/file.h"
#include "common/secure.h"
#include "kbs/admin.h"
#include "kbs/protocol.h"
#include "seal/keyfile.h"
#include "seal/seal.h"

/* ---- cai seal ----------------------------------------------------------- */

/* kbs_register stores |key| at |path| on the broker, only if the broker
 * holds nothing there yet (checked and written in one step by the broker):
 * replacing a key would orphan the files sealed with it. */
static cai_status kbs_register(const kbs_admin *a, const char *path, const uint8_t *key,
                               size_t len) {
    cai_status st = kbs_admin_create(a, path, key, len);
    if (st == CAI_ERR_EXISTS)
        st = cai_fail(CAI_ERR_EXISTS, "the key broker already holds a key at %s; choose "
                      "another --key-id, or delete it first (cai kbs admin delete)", path);
    return st;
}

static void seal_help(void) {
    printf("usage: cai seal IN -o OUT --key-file KEY [--new-key] [--key-id URI]\n"
           "                [--chunk-size SIZE] [--threads N]\n"
           "       cai seal IN -o OUT --kbs URL --admin-key FILE [--kbs-ca FILE] [--key-id URI]\n"
           "       cai seal HF_FOLDER -o OUT --type TYPE [--keep FILE.gguf] (key options as above)\n\n"
           "Encrypt a model file or a directory (a Hugging Face model folder) into one\n"
           "sealed file (docs/SEALED-FORMAT.md): AES-256-GCM in chunks, authenticated\n"
           "header with the model's SHA-256 digest and the key id.\n\n"
           "  -o, --output OUT     the sealed file to write (appears only when complete);\n"
           "                       it must not exist\n"
           "  -f, --force          replace an existing regular file OUT (in one step)\n"
           "  -k, --key-file KEY   the 256-bit key (32 raw bytes or 64 hex digits, mode 0600)\n"
           "      --new-key        generate a new key from the OS CSPRNG into KEY (must not exist)\n"
           "      --key-id URI     the key broker resource holding the key\n"
           "                       (default kbs:///cai/<input name>/key)\n"
           "      --chunk-size SIZE  power of two from 64K to 64M (default 4M)\n"
           "  -t, --threads N      encryption (and import) threads (default: one per CPU)\n"
           "      --type TYPE      IN is a Hugging Face folder: import it to GGUF first, as\n"
           "                       cai model import --type TYPE (q8_0, q4_k_m, q4_0, f16, bf16,\n"
           "                       f32), and seal the GGUF; no plaintext GGUF is left on disk\n"
           "      --keep FILE      with --type: keep the imported GGUF as FILE\n"
           "      --kbs URL        register the key with this key broker under the key id\n"
           "                       (without --key-file: a new key that exists only there)\n"
           "      --admin-key FILE the broker admin's Ed25519 private key\n"
           "      --kbs-ca FILE    CA of the broker's HTTPS certificate\n"
           "  -h, --help           this help\n");
}

/* The default key id: kbs:///cai/<name>/key, with the input's base name
 * (a file's extension dropped, a folder's name whole: qwen2.5-7b is not
 * "qwen2" with an extension, leading dots dropped: .model is "model")
 * reduced to the characters a KBS path allows (common/respath.h). */
static const char *default_key_id(const char *in, char *out, size_t cap) {
    struct stat sb;
    int is_dir = stat(in, &sb) == 0 && S_ISDIR(sb.st_mode);
    char name[128];
    size_t len = strlen(in);
    while (len > 1 && in[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && in[start - 1] != '/')
        start--;
    size_t n = 0;
    for (size_t i = start; i < len && n < sizeof(name) - 1; i++) {
        char c = in[i];
        if (c == '.' && n == 0)
            continue; /* a segment never starts with '.' */
        if (c == '.' && !is_dir && n > 0 && strchr(in + i + 1, '.') == NULL && i + 1 < len)
            break; /* drop the last extension */
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        name[n++] = ok ? c : '-';
    }
    name[n] = '\0';
    if (n == 0)
        snprintf(name, sizeof(name), "model");
    snprintf(out, cap, "kbs:///cai/%s/key", name);
    return out;
}

static int parse_chunk_size(const char *s, unsigned *out_log2) {
    uint64_t v;
    if (cli_parse_size(s, &v) != 0)
        return -1;
    for (unsigned l = SEAL_CHUNK_LOG2_MIN; l <= SEAL_CHUNK_LOG2_MAX; l++)
        if (v == (1ull << l)) {
            *out_log2 = l;
            return 0;
        }
    return -1;
}

/* check_output refuses an |out| that exists, before any work: a symbolic
 * link always (lstat: the link itself, dangling or not), anything but a
 * regular file even with |force|, and a regular file unless |force|. The
 * final commit checks again, in one step with naming the file. */
static cai_status check_output(const char *out, int force) {
    struct stat sb;
    if (lstat(out, &sb) != 0) {
        if (errno == ENOENT)
            return CAI_OK;
        return cai_fail(CAI_ERR_IO, "cannot check %s: %s", out, strerror(errno));
    }
    if (S_ISLNK(sb.st_mode))
        return cai_fail(CAI_ERR_EXISTS, "%s is a symbolic link: cai never writes through one, nor "
                        "replaces it (even with --force); remove it or choose another -o", out);
    if (!force)
        return cai_fail(CAI_ERR_EXISTS, "%s already exists; give --force to replace it "
                        "(a regular file only)", out);
    if (!S_ISREG(sb.st_mode))
        return cai_fail(CAI_ERR_EXISTS, "%s already exists and is not a regular file: "
                        "--force replaces only a regular file", out);
    return CAI_OK;
}

/* import_first, for --type: imports the folder |dir| to GGUF (|type|) before any key
 * exists, and gives in |path| what to seal. The plaintext GGUF loses its
 * name as soon as it is complete (kept open as |*fd|, sealed through
 * /proc/self/fd), so nothing of it stays on disk, even if sealing is
 * killed; |keep| names it instead. Returns the command's exit code. */
static int import_first(const char *dir, const char *type, const char *out, const char *keep,
                        int n_threads, char *path, size_t cap, int *fd) {
    hf_ftype ftype;
    struct stat sb;
    if (hf_ftype_parse(type, &ftype) != CAI_OK)
        return cli_usage_error("seal", "%s", cai_errmsg(CAI_ERR_INVALID_ARG));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_usage_error("seal", "--type imports a Hugging Face model folder; %s is not a "
                               "folder", dir);
    char gguf[4200];
    const char *slash = strrchr(out, '/');
    int dl = slash ? (int)(slash - out) + 1 : 0;
    if (keep)
        snprintf(gguf, sizeof(gguf), "%s", keep);
    else
        snprintf(gguf, sizeof(gguf), "%.*s.%s.import-%ld.gguf", dl, out, slash ? slash + 1 : out,
                 (long)getpid());
    int rc = cli_hf_import("seal", dir, gguf, ftype, n_threads);
    if (rc != 0)
        return rc;
    if (keep) {
        snprintf(path, cap, "%s", keep);
        return 0;
    }
    *fd = open(gguf, O_RDONLY | O_CLOEXEC);
    int saved = errno;
    unlink(gguf);
    if (*fd < 0)
        return cli_fail("seal", cai_fail(CAI_ERR_IO, "%s: %s", gguf, strerror(saved)));
    snprintf(path, cap, "/proc/self/fd/%d", *fd);
    return 0;
}

/* withdraw_key: sealing failed after the key was registered (created by
 * this seal) at |kbs_path|; withdraw it, keeping the first error |st|. */
static cai_status withdraw_key(kbs_admin *kbs, const char *kbs_path, cai_status st) {
    char msg[1024], what[320];
    snprintf(msg, sizeof(msg), "%s", cai_errmsg(st));
    snprintf(what, sizeof(what), "resource/%s", kbs_path);
    buf resp;
    cai_status dst = kbs_admin_call(kbs, "DELETE", what, NULL, 0, NULL, &resp);
    if (dst != CAI_OK)
        fprintf(stderr, "cai seal: warning: the key registered at %s could not be withdrawn: %s\n",
                kbs_path, cai_errmsg(dst));
    buf_free(&resp);
    return cai_fail(st, "%s", msg);
}

/* seal_key gives the key to seal with: random when only the broker is to
 * keep it, else a new or an existing key file. With a broker (|kbs->url|)
 * the key is registered first, create-only: a sealed file whose key cannot
 * be registered would be useless, and a key id taken meanwhile by another
 * seal must not be overwritten. On failure the key is wiped and a new key
 * file removed. */
static cai_status seal_key(const char *key_file, int new_key, kbs_admin *kbs, const char *kbs_path,
                           uint8_t key[SEAL_KEY_LEN]) {
    cai_status st = key_file == NULL ? secure_random(key, SEAL_KEY_LEN)
                    : new_key        ? keyfile_create(key_file, key)
                                     : keyfile_read(key_file, key);
    if (st == CAI_OK && kbs->url && (st = kbs_register(kbs, kbs_path, key, SEAL_KEY_LEN)) != CAI_OK &&
        new_key)
        unlink(key_file); /* a key for nothing */
    if (st != CAI_OK)
        secure_wipe(key, SEAL_KEY_LEN);
    return st;
}

int cmd_seal(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},   {"key-file", required_argument, NULL, 'k'},
        {"new-key", no_argument, NULL, 'N'},        {"key-id", required_argument, NULL, 'I'},
        {"chunk-size", required_argument, NULL, 'C'}, {"threads", required_argument, NULL, 't'},
        {"kbs", required_argument, NULL, 'K'},      {"admin-key", required_argument, NULL, 'A'},
        {"kbs-ca", required_argument, NULL, 'R'},   {"help", no_argument, NULL, 'h'},
        {"type", required_argument, NULL, 'T'},     {"keep", required_argument, NULL, 'P'},
        {"force", no_argument, NULL, 'f'},          {NULL, 0, NULL, 0}};
    const char *out = NULL, *key_file = NULL, *key_id = NULL, *type = NULL, *keep = NULL;
    const char *kbs_url = NULL, *admin_key = NULL, *kbs_ca = NULL;
    int new_key = 0, force = 0;
    seal_params p = {0};
    long n;
    int c;
    while ((c = getopt_long(argc, argv, ":o:k:t:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'k': key_file = optarg; break;
        case 'N': new_key = 1; break;
        case 'f': force = 1; break;
        case 'I': key_id = optarg; break;
        case 'K': kbs_url = optarg; break;
        case 'A': admin_key = optarg; break;
        case 'R': kbs_ca = optarg; break;
        case 'T': type = optarg; break;
        case 'P': keep = optarg; break;
        case 'C':
            if (parse_chunk_size(optarg, &p.chunk_log2) != 0)
                return cli_usage_error("seal", "--chunk-size must be a power of two from 64K to 64M");
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &n) != 0)
                return cli_usage_error("seal", "--threads must be 1..1024");
            p.n_threads = (int)n;
            break;
        case 'h': seal_help(); return 0;
        default: return cli_getopt_error("seal", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("seal", "expected one input file or directory");
    if (out == NULL || (key_file == NULL && kbs_url == NULL))
        return cli_usage_error("seal", "-o OUT and --key-file KEY (or --kbs URL) are required");
    if (!!kbs_url != !!admin_key)
        return cli_usage_error("seal", "--kbs and --admin-key go together");
    /* Before any key is made or registered and before an import: a sealed
     * file replaced by mistake would orphan its key. */
    cai_status st = check_output(out, force);
    if (st != CAI_OK)
        return cli_fail("seal", st);
    p.replace = force;
    const char *in = argv[optind];
    char default_id[256];
    key_id = key_id ? key_id : default_key_id(in, default_id, sizeof(default_id));
    if (!seal_key_id_valid(key_id))
        return cli_usage_error("seal", "key id \"%s\" is not a kbs://[host]/repository/type/tag URI",
                               key_id);
    p.key_id = key_id;
    if (keep && !type)
        return cli_usage_error("seal", "--keep FILE.gguf goes with --type");
    int gguf_fd = -1;
    char gguf_path[4200];
    if (type) {
        int rc = import_first(in, type, out, keep, p.n_threads, gguf_path, sizeof(gguf_path), &gguf_fd);
        if (rc != 0)
            return rc;
        in = gguf_path;
    }

    uint8_t key[SEAL_KEY_LEN], digest[SEAL_DIGEST_LEN];
    jose_key *admin = NULL;
    kbs_admin kbs = {.url = kbs_url, .ca_file = kbs_ca};
    char kbs_path[300];
    if (kbs_url) {
        if ((st = kbs_resource_uri_parse(key_id, kbs_path, sizeof(kbs_path))) != CAI_OK ||
            (st = kbs_admin_key_load(admin_key, &admin)) != CAI_OK)
            return cli_fail("seal", st);
        kbs.key = admin;
    }
    if ((st = seal_key(key_file, new_key, &kbs, kbs_path, key)) != CAI_OK) {
        jose_key_free(admin);
        return cli_fail("seal", st);
    }
    cli_progress prog;
    cli_progress_init(&prog, "sealing");
    p.progress = cli_progress_cb;
    p.progress_arg = &prog;
    double t0 = clock_now();
    st = seal_path(in, out, key, &p, digest);
    cli_progress_end(&prog);
    if (gguf_fd >= 0)
        close(gguf_fd);
    if (type)
        in = argv[optind];
    if (st != CAI_OK && kbs_url)
        st = withdraw_key(&kbs, kbs_path, st);
    secure_wipe(key, sizeof(key));
    jose_key_free(admin);
    if (st != CAI_OK) {
        if (new_key)
            unlink(key_file); /* a key for nothing */
        return cli_fail("seal", st);
    }
    char hex[2 * SEAL_DIGEST_LEN + 1];
    hex_encode(hex, digest, sizeof(digest));
    printf("sealed %s -> %s in %.2f s\n  key id:  %s\n  digest:  sha256:%s\n", in, out,
           clock_now() - t0, key_id, hex);
    if (key_file)
        printf("  key:     %s%s\n", key_file, new_key ? " (new, mode 0600)" : "");
    if (kbs_url)
        printf("  key broker: registered as %s at %s%s\n", kbs_path, kbs_url,
               key_file ? "" : " (the only copy of the key)");
    return 0;
}

/* ---- cai inspect -------------------------------------------------------- */

static void inspect_help(void) {
    printf("usage: cai inspect FILE [--json] [--key-file KEY]\n\n"
           "Show the header of a sealed file: key id, sizes, model digest, chunking and,\n"
           "for a sealed directory, its files. Needs no key. With --key-file, also check\n"
           "that the key matches and the header is authentic.\n\n"
           "      --json           print one JSON object\n"
           "  -k, --key-file KEY   verify the key commitment and the header MAC\n"
           "  -h, --help           this help\n");
}

static json_t *header_json(const seal_header *h, const char *path, int key_checked) {
    char hex[2 * 32 + 1];
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "format", json_string("cai-seal"));
    json_object_set_new(o, "version", json_integer(h->version));
    json_object_set_new(o, "suite", json_string("AES-256-GCM/HKDF-SHA-256"));
    json_object_set_new(o, "key_id", json_string(h->key_id));
    json_object_set_new(o, "kind", json_string(h->kind == SEAL_KIND_DIR ? "directory" : "file"));
    json_object_set_new(o, "plaintext_len", json_integer((json_int_t)h->plaintext_len));
    hex_encode(hex, h->digest, 32);
    json_object_set_new(o, "digest", json_string(hex));
    json_object_set_new(o, "chunk_size", json_integer((json_int_t)1 << h->chunk_log2));
    json_object_set_new(o, "chunks", json_integer((json_int_t)h->n_chunks));
    json_object_set_new(o, "header_len", json_integer(h->header_len));
    json_object_set_new(o, "file_len", json_integer((json_int_t)h->file_len));
    hex_encode(hex, h->salt, 32);
    json_object_set_new(o, "salt", json_string(hex));
    hex_encode(hex, h->key_commitment, 32);
    json_object_set_new(o, "key_commitment", json_string(hex));
    json_object_set_new(o, "authenticated", json_boolean(key_checked));
    if (h->kind == SEAL_KIND_DIR) {
        json_t *files = json_array();
        for (uint32_t i = 0; i < h->n_entries; i++) {
            char mode[8];
            snprintf(mode, sizeof(mode), "%04o", h->entries[i].mode);
            json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "name", h->entries[i].name,
                                                   "size", (json_int_t)h->entries[i].size,
                                                   "mode", mode));
        }
        json_object_set_new(o, "files", files);
    }
    return o;
}

int cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"key-file", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int as_json = 0, c;
    const char *key_file = NULL;
    while ((c = getopt_long(argc, argv, ":k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
        case 'k': key_file = optarg; break;
        case 'h': inspect_help(); return 0;
        default: return cli_getopt_error("inspect", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("inspect", "expected one sealed file");
    const char *path = argv[optind];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail("inspect", cai_fail(CAI_ERR_IO, "cannot open %s: %s", path, strerror(errno)));
    seal_header *h = NULL;
    seal_reader *r = NULL;
    cai_status st;
    if (key_file) {
        uint8_t key[SEAL_KEY_LEN];
        st = keyfile_read(key_file, key);
        if (st == CAI_OK)
            st = seal_reader_open(fd, key, &r);
        secure_wipe(key, sizeof(key));
    } else {
        st = seal_header_read(fd, &h);
    }
    close(fd);
    if (st != CAI_OK)
        return cli_fail("inspect", st);
    const seal_header *hh = r ? seal_reader_header(r) : h;
    json_t *o = header_json(hh, path, r != NULL);
    if (as_json) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
    } else {
        printf("sealed file     %s\n", path);
        printf("format          cai-seal v%u, AES-256-GCM chunks, HKDF-SHA-256 keys\n", hh->version);
        printf("key id          %s\n", hh->key_id);
        if (hh->kind == SEAL_KIND_DIR)
            printf("content         directory, %u files\n", hh->n_entries);
        else
            printf("content         one file\n");
        printf("plaintext       %llu bytes\n", (unsigned long long)hh->plaintext_len);
        printf("digest          sha256:%s\n", json_string_value(json_object_get(o, "digest")));
        printf("chunks          %llu x %u KiB\n", (unsigned long long)hh->n_chunks,
               (1u << hh->chunk_log2) / 1024);
        printf("header          %u bytes (file %llu bytes)\n", hh->header_len,
               (unsigned long long)hh->file_len);
        printf("key commitment  %s\n", json_string_value(json_object_get(o, "key_commitment")));
        printf("authenticated   %s\n", r ? "yes: the key matches and the header MAC verifies"
                                         : "not checked (give --key-file to check)");
        for (uint32_t i = 0; hh->kind == SEAL_KIND_DIR && i < hh->n_entries; i++)
            printf("  %04o %14llu  %s\n", hh->entries[i].mode,
                   (unsigned long long)hh->entries[i].size, hh->entries[i].name);
    }
    json_decref(o);
    seal_header_free(h);
    seal_reader_free(r);
    return 0;
}

/* ---- cai unseal --------------------------------------------------------- */

static void unseal_help(void) {
    printf("usage: cai unseal IN --key-file KEY -o OUT [--threads N] [--force]\n\n"
           "Decrypt a sealed file to OUT (a file, or a new directory for a sealed\n"
           "directory) after verifying every chunk and the model digest. For the trusted\n"
           "side and tests: inside the TEE, cai serve decrypts into memory instead.\n"
           "Nothing is written at OUT unless everything verifies: the plaintext goes to\n"
           "an unnamed file in OUT's folder, which is named OUT only at the end. OUT\n"
           "must not exist; a symbolic link there is never written through.\n\n"
           "  -o, --output OUT     where to write the plaintext\n"
           "  -k, --key-file KEY   the 256-bit key\n"
           "  -t, --threads N      decryption threads (default: one per CPU)\n"
           "  -f, --force          replace an existing regular file OUT (in one step; never\n"
           "                       a directory, and never through a symbolic link)\n"
           "  -h, --help           this help\n");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    CAI_UNUSED(sb);
    CAI_UNUSED(flag);
    CAI_UNUSED(ftw);
    return remove(path);
}

static cai_status mkdirs_for(const char *root, const char *name) {
    char path[8192];
    if (snprintf(path, sizeof(path), "%s/%s", root, name) >= (int)sizeof(path))
        return cai_fail(CAI_ERR_LIMIT, "path too long: %s/%s", root, name);
    for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return cai_fail(CAI_ERR_IO, "cannot create %s: %s", path, strerror(errno));
        *s = '/';
    }
    return CAI_OK;
}

/* Splits the verified plaintext in |fd| into the manifest's files under a
 * staging directory, then renames it to |out|. */
static cai_status write_tree(const seal_header *h, int fd, const char *out) {
    char staging[8192];
    snprintf(staging, sizeof(staging), "%s.partial-XXXXXX", out);
    if (mkdtemp(staging) == NULL)
        return cai_fail(CAI_ERR_IO, "cannot create %s: %s", staging, strerror(errno));
    cai_status st = CAI_OK;
    for (uint32_t i = 0; st == CAI_OK && i < h->n_entries; i++) {
        const seal_entry *e = &h->entries[i];
        char path[8192];
        if (snprintf(path, sizeof(path), "%s/%s", staging, e->name) >= (int)sizeof(path)) {
            st = cai_fail(CAI_ERR_LIMIT, "path too long: %s", e->name);
            break;
        }
        if ((st = mkdirs_for(staging, e->name)) != CAI_OK)
            break;
        int ofd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (ofd < 0) {
            st = cai_fail(CAI_ERR_IO, "cannot create %s: %s", path, strerror(errno));
            break;
        }
        loff_t in_off = (loff_t)e->offset;
        uint64_t left = e->size;
        while (left > 0 && st == CAI_OK) {
            ssize_t r = copy_file_range(fd, &in_off, ofd, NULL, left, 0);
            if (r <= 0)
                st = cai_fail(CAI_ERR_IO, "cannot write %s: %s", path, r < 0 ? strerror(errno) : "short copy");
            else
                left -= (uint64_t)r;
        }
        if (st == CAI_OK && (fchmod(ofd, e->mode) != 0 || fsync(ofd) != 0))
            st = cai_fail(CAI_ERR_IO, "cannot finish %s: %s", path, strerror(errno));
        close(ofd);
    }
    /* RENAME_NOREPLACE: never over anything that appeared at |out| meanwhile
     * (rename alone would replace an empty directory). */
    if (st == CAI_OK && renameat2(AT_FDCWD, staging, AT_FDCWD, out, RENAME_NOREPLACE) != 0)
        st = errno == EEXIST ? cai_fail(CAI_ERR_EXISTS, "%s already exists; a sealed directory "
                                        "is unsealed into a new directory", out)
                             : cai_fail(CAI_ERR_IO, "cannot create %s: %s", out, strerror(errno));
    if (st != CAI_OK)
        nftw(staging, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return st;
}

int cmd_unseal(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"key-file", required_argument, NULL, 'k'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL, *key_file = NULL;
    int n_threads = 0, force = 0, c;
    long n;
    while ((c = getopt_long(argc, argv, ":o:k:t:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'k': key_file = optarg; break;
        case 'f': force = 1; break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &n) != 0)
                return cli_usage_error("unseal", "--threads must be 1..1024");
            n_threads = (int)n;
            break;
        case 'h': unseal_help(); return 0;
        default: return cli_getopt_error("unseal", c, argv);
        }
    }
    if (optind != argc - 1 || out == NULL || key_file == NULL)
        return cli_usage_error("unseal", "expected IN --key-file KEY -o OUT");
    const char *in = argv[optind];
    uint8_t key[SEAL_KEY_LEN];
    seal_reader *r = NULL;
    file_atomic fa = {.fd = -1};
    cli_progress prog;
    cai_status st = check_output(out, force);
    if (st != CAI_OK)
        return cli_fail("unseal", st);
    int fd = open(in, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail("unseal", cai_fail(CAI_ERR_IO, "cannot open %s: %s", in, strerror(errno)));
    st = keyfile_read(key_file, key);
    if (st == CAI_OK)
        st = seal_reader_open(fd, key, &r);
    secure_wipe(key, sizeof(key));
    if (st != CAI_OK)
        goto out;
    const seal_header *h = seal_reader_header(r);
    struct stat sb;
    if (h->kind == SEAL_KIND_DIR && lstat(out, &sb) == 0) {
        st = cai_fail(CAI_ERR_EXISTS, "%s already exists; a sealed directory is "
                      "unsealed into a new directory", out);
        goto out;
    }
    /* For a directory, the plaintext goes to an unnamed file beside it. */
    char target[8192];
    snprintf(target, sizeof(target), "%s%s", out, h->kind == SEAL_KIND_DIR ? ".stream" : "");
    if ((st = file_atomic_open(&fa, target, 0600)) != CAI_OK)
        goto out;
    cli_progress_init(&prog, "unsealing");
    st = seal_reader_decrypt_to_fd(r, fa.fd, n_threads, cli_progress_cb, &prog);
    cli_progress_end(&prog);
    uint8_t digest[SEAL_DIGEST_LEN];
    if (st == CAI_OK)
        st = seal_digest_fd(fa.fd, h->plaintext_len, digest);
    if (st == CAI_OK && !secure_memeq(digest, h->digest, SEAL_DIGEST_LEN))
        st = cai_fail(CAI_ERR_AUTH, "plaintext digest does not match the sealed header");
    if (st != CAI_OK)
        goto out;
    if (h->kind == SEAL_KIND_DIR)
        st = write_tree(h, fa.fd, out);
    else if (force)
        st = file_atomic_commit(&fa); /* rename: replaces a file, follows no link */
    else
        st = file_atomic_commit_new(&fa); /* refused if OUT appeared meanwhile */
    if (st == CAI_ERR_EXISTS && h->kind == SEAL_KIND_FILE)
        st = cai_fail(st, "%s already exists (it appeared while unsealing); nothing was "
                      "written. Give --force to replace it", out);
    if (st == CAI_OK) {
        char hex[2 * SEAL_DIGEST_LEN + 1];
        hex_encode(hex, digest, sizeof(digest));
        printf("unsealed %s -> %s (%llu bytes%s)\n  digest:  sha256:%s (verified)\n", in, out,
               (unsigned long long)h->plaintext_len,
               h->kind == SEAL_KIND_DIR ? ", a directory" : "", hex);
    }
out:
    file_atomic_abort(&fa);
    seal_reader_free(r);
    close(fd);
    return st == CAI_OK ? 0 : cli_fail("unseal", st);
}
