/* main.c - `cai`: one program, git-style subcommands. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef CAI_VERSION
#define CAI_VERSION "0.1.0"
#endif

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"seal", cmd_seal, "encrypt a model file or directory into a sealed file"},
    {"unseal", cmd_unseal, "decrypt a sealed file (trusted side and tests only)"},
    {"inspect", cmd_inspect, "show a sealed file's header (no key needed)"},
    {"attest", cmd_attest, "TDX quotes: the simulated TEE, inspect, DCAP verify"},
    {"kbs", cmd_kbs, "the key broker: releases keys to attested TEEs; its admin client"},
    {"agent", cmd_agent, "in the TEE: attest to a key broker and fetch a secret"},
    {"model", cmd_model, "write a synthetic GGUF model, or inspect one"},
    {"serve", cmd_serve, "serve a model: OpenAI API, web chat, metrics"},
    {"run", cmd_run, "complete a prompt with a GGUF model"},
    {"chat", cmd_chat, "chat in the terminal (with a local model, or a cai server)"},
    {"proxy", cmd_proxy, "client side: verify cai servers' attested TLS, forward HTTP to them"},
    {"receipt", cmd_receipt, "verify a receipt signed by an attested server, offline"},
    {"bench", cmd_bench, "measure performance (cai bench seal, cai bench -m MODEL)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: cai <command> [options]\n\n"
               "cai - confidential LLM inference\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'cai <command> --help' describes a command. 'cai --version' prints "
               "the version.\n");
}

int main(int argc, char **argv) {
    opterr = 0; /* the commands report option errors (cli_getopt_error) */
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            char help[] = "--help";
            char *args[] = {argv[2], help, NULL};
            for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[2], commands[i].name) == 0)
                    return commands[i].fn(2, args);
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("cai %s\n", CAI_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "cai: '%s' is not a cai command. See 'cai --help'.\n", name);
    return CLI_EXIT_USAGE;
}
