/* respath.h - KBS resource paths "repository/type/tag": the one rule for the
 * broker's store and API (kbs), a sealed file's key id (seal) and the fetch
 * through the CoCo confidential data hub (attest).
 *
 * The rule is Trustee's (its ResourceDesc): exactly three segments separated
 * by single '/', each one or more of A-Z a-z 0-9 . _ - that does not start
 * with '.' (so never "." or "..", and no hidden name in a file-system
 * store); and cai's own limit, at most RESPATH_MAX bytes in all, so a path
 * fits the broker's 256-byte buffers and a file name. */
#ifndef CAI_COMMON_RESPATH_H
#define CAI_COMMON_RESPATH_H

/* The longest resource path in bytes, without the NUL. */
#define RESPATH_MAX 255

/* respath_valid returns 1 if the NUL-terminated |path| is a resource path
 * "repo/type/tag" by the rule above, else 0. */
int respath_valid(const char *path);

#endif
