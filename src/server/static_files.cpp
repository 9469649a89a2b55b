// See static_files.hpp.
#include "server/static_files.hpp"

#include <array>
#include <boost/url/parse.hpp>
#include <string>
#include <utility>

#include "server/api_error.hpp"

namespace litchi::server {
namespace {

constexpr std::string_view kPlaceholderPage = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Litchi</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#333}
code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}</style></head>
<body><h1>Litchi is running</h1>
<p>The web app is not built yet, so there is nothing to show here. Build it with
<code>make run</code> (or <code>npm --prefix web run build</code>) and start the server with
<code>--web web/dist</code>.</p>
<p>The HTTP API works already: see <code>/healthz</code> and <code>/api/jobs</code>.</p>
</body></html>
)";

bool is_safe_segment(std::string_view segment) {
    if (segment.empty() || segment.front() == '.') return false;  // "..", ".", dotfiles
    for (char c : segment) {
        if (c == '/' || c == '\\' || c == '\0') return false;
    }
    return true;
}

}  // namespace

std::string_view content_type_for(const std::filesystem::path& file) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kTypes = {{
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".avif", "image/avif"},
        {".ico", "image/x-icon"},
        {".woff", "font/woff"},
        {".woff2", "font/woff2"},
        {".ttf", "font/ttf"},
        {".otf", "font/otf"},
        {".wasm", "application/wasm"},
        {".xml", "application/xml"},
    }};
    std::string ext = file.extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [known, type] : kTypes) {
        if (ext == known) return type;
    }
    return "application/octet-stream";
}

StaticFiles::StaticFiles(std::filesystem::path web_dir) : root_(std::move(web_dir)) {}

Reply StaticFiles::serve(const Request& req) const {
    auto parsed = boost::urls::parse_origin_form(req.target());
    if (!parsed) return error_response(ApiError::bad_request, "malformed request target");

    std::filesystem::path relative;
    std::string last;
    for (auto segment : parsed->segments()) {
        if (segment.empty()) continue;  // "//" and a trailing "/"
        if (!is_safe_segment(segment)) return error_response(ApiError::not_found, "no such file");
        relative /= std::string(segment);
        last = segment;
    }

    std::error_code ec;
    if (!relative.empty()) {
        auto file = root_ / relative;
        if (std::filesystem::is_regular_file(file, ec)) {
            // Vite puts content-hashed names under assets/: safe to cache forever.
            bool immutable = relative.begin()->string() == "assets";
            return serve_file(req, file, immutable);
        }
        // A missing asset (it has an extension) is a 404, not the app page.
        if (last.find('.') != std::string::npos) {
            return error_response(ApiError::not_found, "no such file");
        }
    }
    auto index = root_ / "index.html";
    if (std::filesystem::is_regular_file(index, ec)) return serve_file(req, index, false);
    return serve_placeholder(req);
}

Reply StaticFiles::serve_file(const Request& req, const std::filesystem::path& file,
                              bool immutable) const {
    http::file_body::value_type body;
    beast::error_code ec;
    body.open(file.c_str(), beast::file_mode::scan, ec);
    if (ec) return error_response(ApiError::not_found, "no such file");
    auto size = body.size();

    FileResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, content_type_for(file));
    res.set("X-Content-Type-Options", "nosniff");
    res.set(http::field::cache_control,
            immutable ? "public, max-age=31536000, immutable" : "no-cache");
    res.body() = std::move(body);
    res.content_length(size);
    return res;
}

Reply StaticFiles::serve_placeholder(const Request& req) const {
    StringResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-cache");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = std::string(kPlaceholderPage);
    res.prepare_payload();
    return res;
}

}  // namespace litchi::server
