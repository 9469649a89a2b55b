// See vips_library.hpp.
#include "fetch/vips_library.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

namespace litchi {
namespace {

std::string program_name = "litchi";

// The soname of the libvips ABI the headers describe (libvips.so.42).
std::string vips_soname() {
    return "libvips.so." + std::to_string(VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE);
}

template <class F>
void find(void* handle, F& slot, const char* name) {
    slot = reinterpret_cast<F>(dlsym(handle, name));
    if (!slot) throw std::runtime_error(std::string("libvips has no ") + name);
}

VipsLibrary load() {
    const std::string soname = vips_soname();
    // Global, as a linked libvips was: the loaders libvips opens as its own
    // modules (HEIF, ...) resolve their libvips symbols against it.
    void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        const char* why = dlerror();
        throw std::runtime_error("cannot load " + soname + " (TIFF, HEIF/AVIF, --verify decode " +
                                 "and thumbnails need it): " + (why ? why : "unknown error"));
    }
    decltype(&::vips_version) version = nullptr;
    decltype(&::vips_init) init = nullptr;
    decltype(&::vips_block_untrusted_set) block_untrusted_set = nullptr;
    decltype(&::vips_cache_set_max) cache_set_max = nullptr;
    decltype(&::vips_cache_set_max_mem) cache_set_max_mem = nullptr;
    decltype(&::vips_concurrency_set) concurrency_set = nullptr;
    find(handle, version, "vips_version");
    find(handle, init, "vips_init");
    find(handle, block_untrusted_set, "vips_block_untrusted_set");
    find(handle, cache_set_max, "vips_cache_set_max");
    find(handle, cache_set_max_mem, "vips_cache_set_max_mem");
    find(handle, concurrency_set, "vips_concurrency_set");

    VipsLibrary lib{};
    find(handle, lib.error_buffer, "vips_error_buffer");
    find(handle, lib.error_clear, "vips_error_clear");
    find(handle, lib.source_new_from_descriptor, "vips_source_new_from_descriptor");
    find(handle, lib.jpegload_source, "vips_jpegload_source");
    find(handle, lib.pngload_source, "vips_pngload_source");
    find(handle, lib.gifload_source, "vips_gifload_source");
    find(handle, lib.webpload_source, "vips_webpload_source");
    find(handle, lib.tiffload_source, "vips_tiffload_source");
    find(handle, lib.heifload_source, "vips_heifload_source");
    find(handle, lib.image_get_width, "vips_image_get_width");
    find(handle, lib.image_get_height, "vips_image_get_height");
    find(handle, lib.image_get_n_pages, "vips_image_get_n_pages");
    find(handle, lib.avg, "vips_avg");
    find(handle, lib.thumbnail, "vips_thumbnail");
    find(handle, lib.webpsave, "vips_webpsave");
    find(handle, lib.object_unref, "g_object_unref");  // from libgobject, which libvips links

    // VIPS_INIT's check: the library's ABI is the one the headers describe.
    if (version(3) - version(5) != VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE)
        throw std::runtime_error(soname + " has another ABI version than litchi was built for");
    // Untrusted loaders (ImageMagick, PDF, ...) are a large attack surface
    // for files from the internet (blocked here whether or not
    // prepare_vips set VIPS_BLOCK_UNTRUSTED); the operation cache would keep
    // images alive.
    if (init(program_name.c_str()) != 0) throw std::runtime_error("libvips failed to initialise");
    block_untrusted_set(TRUE);
    cache_set_max(0);
    cache_set_max_mem(0);
    concurrency_set(1);
    return lib;
}

}  // namespace

void prepare_vips(const char* argv0) {
    if (argv0 && *argv0) program_name = argv0;
    // Read by vips_init. Set now: libvips starts later, on whichever thread
    // needs it first, and setenv is not safe while other threads read the
    // environment (libcurl does, for proxies).
    setenv("VIPS_BLOCK_UNTRUSTED", "1", 0);
    setenv("VIPS_WARNING", "0", 0);  // decoder chatter is not for our users' terminals
}

const VipsLibrary& vips_library() {
    // A failure is kept and thrown again: libvips is tried once per process.
    static std::once_flag once;
    static VipsLibrary lib{};
    static std::string failure;
    std::call_once(once, [] {
        try {
            lib = load();
        } catch (const std::exception& e) {
            failure = e.what();
        }
    });
    if (!failure.empty()) throw std::runtime_error(failure);
    return lib;
}

}  // namespace litchi
