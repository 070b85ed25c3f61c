#!/bin/sh
# embed.sh FILE SYMBOL - writes C source defining SYMBOL[] (the bytes of
# FILE, NUL-terminated) and SYMBOL_len (its length without the NUL).
set -eu
file=$1
sym=$2
echo "/* Generated from $file by scripts/embed.sh: do not edit. */"
echo "#include <stddef.h>"
echo "const char ${sym}[] = {"
od -An -v -tx1 "$file" | sed -e 's/  */ /g' -e 's/^ //' -e 's/ $//' -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'
echo "0x00 };"
echo "const size_t ${sym}_len = sizeof(${sym}) - 1;"
