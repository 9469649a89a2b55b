// See ws_frames.hpp.
#include "server/ws_frames.hpp"

#include <algorithm>

namespace litchi::server::ws {

namespace {

constexpr std::size_t kMaxControlPayload = 125;

bool is_control(Opcode opcode) {
    return (static_cast<std::uint8_t>(opcode) & 0x8) != 0;
}

bool is_known(std::uint8_t opcode) {
    return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

}  // namespace

bool is_valid_close_code(std::uint16_t code) {
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1014) return true;
    return code >= 3000 && code <= 4999;
}

void FrameReader::fail(std::uint16_t code, std::string why, std::vector<Incoming>& out) {
    finished_ = true;
    Incoming error;
    error.kind = Incoming::Kind::error;
    error.code = code;
    error.payload = std::move(why);
    out.push_back(std::move(error));
}

void FrameReader::feed(std::string_view bytes, std::vector<Incoming>& out) {
    while (!finished_) {
        if (stage_ == Stage::header) {
            if (bytes.empty()) return;
            // Take header bytes one by one until the header is whole: headers are
            // at most 14 bytes, and knowing the exact size needs the first two.
            header_[header_size_++] = static_cast<std::uint8_t>(bytes.front());
            bytes.remove_prefix(1);
            if (!parse_header(out)) continue;
            if (finished_) return;
            if (remaining_ == 0) frame_done(out);
            continue;
        }
        // Payload: unmask what arrived of this frame and append it.
        if (bytes.empty()) return;
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
        std::string& target = is_control(opcode_) ? control_ : message_;
        const std::size_t start = target.size();
        target.append(bytes.data(), take);
        for (std::size_t i = start; i < target.size(); ++i) {
            target[i] =
                static_cast<char>(static_cast<std::uint8_t>(target[i]) ^ mask_[mask_offset_++ & 3]);
        }
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (!is_control(opcode_) && message_text_ &&
            !utf8_.feed(std::string_view(message_).substr(start))) {
            return fail(close_code::invalid_payload, "invalid UTF-8 in a text message", out);
        }
        if (remaining_ == 0) frame_done(out);
    }
}

bool FrameReader::reject(std::uint16_t code, std::string why, std::vector<Incoming>& out) {
    fail(code, std::move(why), out);
    return true;  // the header is dealt with: the reader is finished
}

bool FrameReader::parse_header(std::vector<Incoming>& out) {
    if (header_size_ < 2) return false;
    const std::uint8_t b0 = header_[0];
    const std::uint8_t b1 = header_[1];
    const std::uint8_t length7 = b1 & 0x7F;
    const std::size_t length_bytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
    const bool masked = (b1 & 0x80) != 0;
    if (header_size_ == 2) {
        // Everything the first two bytes decide is checked before waiting for more.
        if (b0 & 0x70) return reject(close_code::protocol_error, "reserved bits set", out);
        const std::uint8_t opcode = b0 & 0x0F;
        if (!is_known(opcode)) return reject(close_code::protocol_error, "reserved opcode", out);
        if (!masked) return reject(close_code::protocol_error, "client frames must be masked", out);
        fin_ = (b0 & 0x80) != 0;
        opcode_ = static_cast<Opcode>(opcode);
        if (is_control(opcode_)) {
            if (!fin_) return reject(close_code::protocol_error, "fragmented control frame", out);
            if (length7 > kMaxControlPayload)
                return reject(close_code::protocol_error, "control frame over 125 bytes", out);
        } else if (opcode_ == Opcode::continuation) {
            if (!in_message_)
                return reject(close_code::protocol_error, "continuation without a message", out);
        } else if (in_message_) {
            return reject(close_code::protocol_error, "new message inside a fragmented one", out);
        }
    }
    if (header_size_ < 2 + length_bytes + 4) return false;

    std::uint64_t length = length7;
    if (length_bytes > 0) {
        length = 0;
        for (std::size_t i = 0; i < length_bytes; ++i) length = (length << 8) | header_[2 + i];
        if (length_bytes == 8 && (length >> 63) != 0)
            return reject(close_code::protocol_error, "frame length has its top bit set", out);
    }
    const std::size_t already = is_control(opcode_) ? 0 : (in_message_ ? message_.size() : 0);
    if (!is_control(opcode_) && length > max_message_ - std::min(already, max_message_))
        return reject(close_code::too_big, "message over the size limit", out);
    std::copy_n(header_.begin() + 2 + length_bytes, 4, mask_.begin());
    mask_offset_ = 0;
    remaining_ = length;
    header_size_ = 0;
    stage_ = Stage::payload;
    if (!is_control(opcode_) && opcode_ != Opcode::continuation) {
        in_message_ = true;
        message_text_ = opcode_ == Opcode::text;
        message_.clear();
        utf8_.reset();
    }
    if (is_control(opcode_)) control_.clear();
    return true;
}

void FrameReader::frame_done(std::vector<Incoming>& out) {
    stage_ = Stage::header;
    if (is_control(opcode_)) {
        Incoming control;
        if (opcode_ == Opcode::ping) control.kind = Incoming::Kind::ping;
        if (opcode_ == Opcode::pong) control.kind = Incoming::Kind::pong;
        if (opcode_ == Opcode::close) {
            control.kind = Incoming::Kind::close;
            if (control_.empty()) {
                control.code = close_code::no_status;
            } else if (control_.size() == 1) {
                return fail(close_code::protocol_error, "close payload of one byte", out);
            } else {
                control.code =
                    static_cast<std::uint16_t>((static_cast<std::uint8_t>(control_[0]) << 8) |
                                               static_cast<std::uint8_t>(control_[1]));
                if (!is_valid_close_code(control.code))
                    return fail(close_code::protocol_error, "invalid close code", out);
                if (!is_valid_utf8(std::string_view(control_).substr(2)))
                    return fail(close_code::invalid_payload, "invalid UTF-8 in the close reason",
                                out);
                control_.erase(0, 2);
            }
            finished_ = true;  // nothing may follow a close
        }
        control.payload = std::move(control_);
        control_.clear();
        out.push_back(std::move(control));
        return;
    }
    if (!fin_) return;  // more fragments to come
    if (message_text_ && !utf8_.complete())
        return fail(close_code::invalid_payload, "text message ends inside a UTF-8 sequence", out);
    Incoming message;
    message.kind = Incoming::Kind::message;
    message.text = message_text_;
    message.payload = std::move(message_);
    message_.clear();
    in_message_ = false;
    out.push_back(std::move(message));
}

FrameHeader frame_header(Opcode opcode, std::uint64_t length) {
    FrameHeader header;
    header.bytes[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(opcode));
    if (length < 126) {
        header.bytes[1] = static_cast<std::uint8_t>(length);
        header.size = 2;
    } else if (length <= 0xFFFF) {
        header.bytes[1] = 126;
        header.bytes[2] = static_cast<std::uint8_t>(length >> 8);
        header.bytes[3] = static_cast<std::uint8_t>(length);
        header.size = 4;
    } else {
        header.bytes[1] = 127;
        for (int i = 0; i < 8; ++i)
            header.bytes[2 + i] = static_cast<std::uint8_t>(length >> (56 - 8 * i));
        header.size = 10;
    }
    return header;
}

std::string control_frame(Opcode opcode, std::string_view payload) {
    payload = payload.substr(0, kMaxControlPayload);
    const FrameHeader header = frame_header(opcode, payload.size());
    std::string frame(reinterpret_cast<const char*>(header.bytes.data()), header.size);
    frame.append(payload);
    return frame;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload.append(utf8_prefix(reason, kMaxControlPayload - 2));
    return control_frame(Opcode::close, payload);
}

}  // namespace litchi::server::ws
