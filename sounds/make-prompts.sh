#!/usr/bin/env bash
# Regenerates the Mandarin IVR prompts in zh-CN/ from prompts.tsv (name<TAB>text).
#
# Voice: `cmn-latn-pinyin`. espeak-ng's plain `cmn` voice converts characters to pinyin with
# tone numbers and then reads those numbers (and any digit) in English ("ran two ..."); the
# pinyin voice speaks the same characters as Mandarin, digits included (check with
# `espeak-ng -v cmn-latn-pinyin -q -x "请按1"`).
# Level: normalised to -3 dBFS (espeak output clips slightly when resampled otherwise).
# Output: 8 kHz, mono, 16-bit signed PCM WAV, as `PromptLibrary::load` requires.
# Reproducible: fixed voice, speed and conversion; `sox -D` disables dither (no randomness).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/zh-CN"
voice="cmn-latn-pinyin"
speed=140
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
while IFS=$'\t' read -r name text; do
    [ -z "$name" ] && continue
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/$name.wav" "$text"
    sox -D "$tmp/$name.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$name.wav" norm -3
    printf '%-20s %6.2fs  %s\n' "$name" "$(soxi -D "$out/$name.wav")" "$text"
done < "$here/prompts.tsv"
