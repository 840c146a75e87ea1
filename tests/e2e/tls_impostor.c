/* tls_impostor.c - a test peer for tests/e2e/ratls.sh: a TLS 1.3 server that
 * presents a certificate it copied (an attested server's) without holding
 * its private key. Its "key" has the certificate's public key, so OpenSSL
 * takes it, but signs with a key of its own: what a host that relays or
 * replays a TD's certificate can do. Every byte a client sends after a
 * handshake is appended to OUT, so the test can show nothing arrived.
 *
 *   cc -o impostor tls_impostor.c -lssl -lcrypto
 *   impostor PORT CERT.pem OUT */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY_METHOD: the only way to sign as another */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

static EC_KEY *attacker;

static int sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
                unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey) {
    (void)kinv, (void)r, (void)eckey;
    return ECDSA_sign(type, dgst, dlen, sig, siglen, attacker);
}

static ECDSA_SIG *sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                           const BIGNUM *r, EC_KEY *eckey) {
    (void)kinv, (void)r, (void)eckey;
    return ECDSA_do_sign(dgst, dlen, attacker);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: impostor PORT CERT.pem OUT\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (cert == NULL)
        return 1;
    attacker = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EC_KEY_generate_key(attacker);
    EC_KEY_METHOD *m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), NULL, &setup, NULL);
    EC_KEY_METHOD_set_sign(m, sign, setup, sign_sig);
    EC_KEY *pub = EVP_PKEY_get1_EC_KEY(X509_get0_pubkey(cert));
    EC_KEY_set_method(pub, m);
    EVP_PKEY *k = EVP_PKEY_new();
    EVP_PKEY_assign_EC_KEY(k, pub);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, k) != 1) {
        fprintf(stderr, "impostor: OpenSSL refused the copied certificate\n");
        return 1;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 8) != 0)
        return 1;
    printf("impostor: listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            char b[4096];
            int n;
            while ((n = SSL_read(ssl, b, sizeof(b))) > 0) {
                FILE *o = fopen(argv[3], "a");
                if (o) {
                    fwrite(b, 1, (size_t)n, o);
                    fclose(o);
                }
            }
        }
        SSL_free(ssl);
        close(c);
    }
}
