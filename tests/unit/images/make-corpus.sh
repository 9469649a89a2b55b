#!/usr/bin/env bash
# Regenerates the image corpus that tests/unit/core_image_header_test.cpp
# cross-checks against libvips: small real files written by real encoders
# (libvips, libjpeg-turbo's cjpeg/jpegtran, libwebp's cwebp/img2webp/gif2webp,
# gifsicle). The files are committed, so the tests need none of these tools;
# run this (after `scripts/install-deps.sh corpus`) only to change the corpus.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sources: coloured noise (so encoders have something to encode), an alpha band.
noise() {  # noise FILE WIDTH HEIGHT SEED-MEAN
  for b in 0 1 2; do
    vips gaussnoise "$tmp/n$b.v" "$2" "$3" --mean $(( $4 + 40 * b )) --sigma 40
    vips cast "$tmp/n$b.v" "$tmp/c$b.v" uchar
  done
  vips bandjoin "$tmp/c0.v $tmp/c1.v $tmp/c2.v" "$1"
}
noise "$tmp/rgb.v" 48 32 60
noise "$tmp/rgb2.v" 48 32 90
noise "$tmp/rgb3.v" 48 32 120
vips gaussnoise "$tmp/a.v" 48 32 --mean 128 --sigma 60
vips cast "$tmp/a.v" "$tmp/alpha.v" uchar
vips bandjoin "$tmp/rgb.v $tmp/alpha.v" "$tmp/rgba.v"
vips colourspace "$tmp/rgb.v" "$tmp/grey.v" b-w

# JPEG: EXIF (libvips writes an APP1 Exif segment before the frame header),
# progressive, CMYK (Adobe APP14), greyscale, no subsampling, restart markers,
# arithmetic coding, optimised Huffman tables.
vips jpegsave "$tmp/rgb.v" exif-baseline.jpg --Q 80
vips jpegsave "$tmp/rgb.v" progressive.jpg --Q 80 --interlace --strip
vips colourspace "$tmp/rgb.v" "$tmp/cmyk.v" cmyk
vips jpegsave "$tmp/cmyk.v" cmyk.jpg --Q 80 --strip
vips jpegsave "$tmp/grey.v" grey.jpg --Q 80 --strip
vips jpegsave "$tmp/rgb.v" no-subsample.jpg --Q 90 --subsample-mode off --strip
vips pngsave "$tmp/rgb.v" "$tmp/src.png"
vips copy "$tmp/rgb.v" "$tmp/src.ppm"
cjpeg -restart 1 -outfile restart.jpg "$tmp/src.ppm"
jpegtran -arithmetic -outfile arithmetic.jpg exif-baseline.jpg
jpegtran -optimize -progressive -outfile optimized-progressive.jpg exif-baseline.jpg

# PNG: RGB, RGBA, palette, 16-bit grey, 1-bit grey, interlaced (Adam7).
vips pngsave "$tmp/rgb.v" rgb.png --strip
vips pngsave "$tmp/rgba.v" rgba.png --strip
vips pngsave "$tmp/rgb.v" palette.png --palette --strip
vips cast "$tmp/grey.v" "$tmp/grey16.v" ushort --shift
vips pngsave "$tmp/grey16.v" grey16.png --strip
vips pngsave "$tmp/grey.v" grey1.png --bitdepth 1 --strip
vips pngsave "$tmp/rgba.v" interlaced.png --interlace --strip

# GIF: a still, an animation of three frames, an interlaced one.
for i in "" 2 3; do vips gifsave "$tmp/rgb$i.v" "$tmp/f$i.gif"; done
cp "$tmp/f.gif" still.gif
gifsicle --loopcount=forever --delay 10 "$tmp/f.gif" "$tmp/f2.gif" "$tmp/f3.gif" > animated.gif
gifsicle --interlace "$tmp/f.gif" > interlaced.gif

# WebP: lossy (VP8), lossless (VP8L), lossy with alpha (VP8X + ALPH),
# animations (ANIM + ANMF) lossy and lossless.
vips pngsave "$tmp/rgba.v" "$tmp/rgba.png"
for i in 2 3; do vips pngsave "$tmp/rgb$i.v" "$tmp/src$i.png"; done
cwebp -quiet -q 75 "$tmp/src.png" -o lossy.webp
cwebp -quiet -lossless "$tmp/src.png" -o lossless.webp
cwebp -quiet -q 75 "$tmp/rgba.png" -o alpha.webp
img2webp -loop 0 -lossy "$tmp/src.png" "$tmp/src2.png" "$tmp/src3.png" -o animated.webp
img2webp -loop 0 -lossless "$tmp/src.png" "$tmp/src2.png" "$tmp/src3.png" -o animated-lossless.webp
gif2webp -quiet animated.gif -o from-gif.webp
