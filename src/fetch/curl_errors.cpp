// CURLcode -> FailureReason (see curl_errors.hpp).
#include "fetch/curl_errors.hpp"

#include "fetch/transfer.hpp"

namespace litchi {

FailureReason classify_curl_error(const Transfer& t, CURLcode rc) {
    if (t.abort_reason != FailureReason::none) return t.abort_reason;
    switch (rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return FailureReason::dns;
        case CURLE_COULDNT_CONNECT:
            // Refused by the guard (every address it tried), not by the network.
            return t.blocked_seen ? FailureReason::blocked_address : FailureReason::connect;
        case CURLE_OPERATION_TIMEDOUT:
            return FailureReason::timeout;
        case CURLE_PARTIAL_FILE:
            return FailureReason::truncated;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
            return (t.status_checked || t.bytes > 0) ? FailureReason::truncated
                                                     : FailureReason::connect;
        case CURLE_FILESIZE_EXCEEDED:
            return FailureReason::too_large;
        case CURLE_TOO_MANY_REDIRECTS:
            return FailureReason::too_many_redirects;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return FailureReason::bad_url;
        case CURLE_WRITE_ERROR:
            return FailureReason::io;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
            return FailureReason::tls;
        default:
            return FailureReason::connect;
    }
}

}  // namespace litchi
