#!/bin/sh
# Write a C file holding the bytes of FILE as NAME[] and NAME_len, for a
# file served from the binary (web/index.html: GET /, heraldd(8)).
# Portable sh, od and awk: xxd is not part of every build machine.
# Usage: embed.sh FILE NAME > OUT.c
set -eu
[ $# -eq 2 ] || { echo "usage: embed.sh FILE NAME" >&2; exit 2; }
printf '/* Made from %s by web/embed.sh: do not edit. */\n' "${1##*/}"
printf '#include <stddef.h>\n\nconst unsigned char %s[] = {\n' "$2"
od -An -v -tu1 "$1" | awk -v name="$2" '
	{ line = ""; for (i = 1; i <= NF; i++) line = line $i ","; n += NF
	  if (NF) print "\t" line }
	END { print "\t0\n};\nconst size_t " name "_len = " n ";" }'
