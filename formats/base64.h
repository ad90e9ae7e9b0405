// Base64 (RFC 4648, padded) for binary state kept inside JSON, such as RNG states.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lockstep {

std::string Base64Encode(const uint8_t* data, size_t size);
inline std::string Base64Encode(const std::vector<uint8_t>& v) { return Base64Encode(v.data(), v.size()); }

// Decodes `text`; returns false on any character or padding error.
bool Base64Decode(const std::string& text, std::vector<uint8_t>* out);

}  // namespace lockstep
