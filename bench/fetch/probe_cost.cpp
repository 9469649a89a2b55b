// CPU time per image of the probe's check, on the benchmark's JPEGs: the
// structural check (--verify header), the libvips header-only open the probe
// used before it, a full decode (--verify decode), and opening and closing the
// file alone (to subtract). Not part of the build; after a release build:
//   c++ -std=c++20 -O2 -Isrc -Ibuild/release/generated $(pkg-config --cflags vips) \
//       bench/fetch/probe_cost.cpp build/release/liblitchi_{fetch,blobs,crypto,core}.a \
//       $(pkg-config --libs vips libcurl) -lspdlog -lfmt -lboost_url -lcrypto -pthread \
//       -o /tmp/probe_cost && /tmp/probe_cost bench/out/fetch-images 2000
#include <fcntl.h>
#include <unistd.h>
#include <vips/vips.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/image_header.hpp"
#include "fetch/engine.hpp"
#include "fetch/probe.hpp"
#include "fetch/vips_library.hpp"
using namespace litchi;
int main(int argc, char** argv) {
    init_fetch_libraries("pb");
    ensure_image_library();
    std::string dir = argv[1];
    int n = std::stoi(argv[2]);
    for (int mode = 0; mode < 4; ++mode) {
        auto t0 = std::clock();
        int ok = 0;
        for (int i = 0; i < n; ++i) {
            char name[64];
            snprintf(name, sizeof name, "/%05d.jpg", i);
            int fd = open((dir + name).c_str(), O_RDONLY);
            unsigned char head[64];
            pread(fd, head, 64, 0);
            if (mode == 0) {
                ok += probe_image_fd(fd, head, 100000000, VerifyMode::header).reason ==
                      FailureReason::none;
            } else if (mode == 1) {  // the old path: a libvips header open
                VipsSource* s = vips_source_new_from_descriptor(fd);
                VipsImage* im = nullptr;
                vips_jpegload_source(s, &im, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
                g_object_unref(s);
                if (im) {
                    ok += vips_image_get_width(im) > 0;
                    g_object_unref(im);
                }
            } else if (mode == 2) {
                ok += probe_image_fd(fd, head, 100000000, VerifyMode::decode).reason ==
                      FailureReason::none;
            } else {
                ok += 1;
            }
            close(fd);
        }
        double us = double(std::clock() - t0) / CLOCKS_PER_SEC * 1e6 / n;
        printf("%s: %d/%d ok, %.1f us CPU per image\n",
               mode == 0   ? "structure (header)"
               : mode == 1 ? "libvips header open (before)"
               : mode == 2 ? "decode"
                           : "open+close only",
               ok, n, us);
    }
}
