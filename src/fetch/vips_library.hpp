// libvips, opened with dlopen on first use instead of linked into the
// program. Linked, libvips and the ~65 libraries it pulls in were loaded,
// relocated and initialised by every start of `litchi` (17 ms of a 36 ms
// `litchi --version`), although most runs never call it: JPEG, PNG, GIF,
// WebP and BMP are checked by core/image_header. Only TIFF, HEIF/AVIF,
// `--verify decode` and the server's thumbnails need it.
//
// The functions litchi calls are looked up once, by name, with the types
// their declarations in <vips/vips.h> give them (the headers are still
// compiled against; the library's ABI version is checked as VIPS_INIT does).
#pragma once

#include <vips/vips.h>

namespace litchi {

struct VipsLibrary {
    decltype(&::vips_error_buffer) error_buffer;
    decltype(&::vips_error_clear) error_clear;
    decltype(&::vips_source_new_from_descriptor) source_new_from_descriptor;
    decltype(&::vips_jpegload_source) jpegload_source;
    decltype(&::vips_pngload_source) pngload_source;
    decltype(&::vips_gifload_source) gifload_source;
    decltype(&::vips_webpload_source) webpload_source;
    decltype(&::vips_tiffload_source) tiffload_source;
    decltype(&::vips_heifload_source) heifload_source;
    decltype(&::vips_image_get_width) image_get_width;
    decltype(&::vips_image_get_height) image_get_height;
    decltype(&::vips_image_get_n_pages) image_get_n_pages;
    decltype(&::vips_avg) avg;
    decltype(&::vips_thumbnail) thumbnail;
    decltype(&::vips_webpsave) webpsave;
    decltype(&::g_object_unref) object_unref;
};

// libvips loaded and started (once, from any thread; later calls return the
// same): untrusted loaders blocked, no operation cache, one thread per
// operation. Throws std::runtime_error, saying why, when it cannot be.
const VipsLibrary& vips_library();

// The same, for a caller that only wants libvips started now: `serve`, and
// `fetch --verify decode`, so that a broken libvips shows at once rather
// than at the first thumbnail or image.
inline void ensure_image_library() {
    (void)vips_library();
}

// Before any other thread starts: the program name libvips will be started
// with (argv[0]), and the environment it reads (untrusted loaders blocked,
// no warnings on the terminal).
void prepare_vips(const char* argv0);

}  // namespace litchi
