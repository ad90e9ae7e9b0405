#include "report/html.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace lockstep {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t Utf8Length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xC2) return 0;  // overlong
  return n;
}

const char kStyle[] = R"css(
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #111;
       background: #fff; margin: 24px auto; max-width: 980px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: #444; margin: 0 0 12px; }
.verdict { font-weight: 600; padding: 6px 10px; border-left: 5px solid #555; background: #f4f4f4; }
.verdict.ok { border-color: #009E73; } .verdict.bad { border-color: #D55E00; } .verdict.none { border-color: #999; }
.note { color: #333; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
code, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
figure { margin: 10px 0 18px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 13px; color: #333; margin-top: 2px; }
svg { display: block; width: 100%; height: auto; background: #fff; }
svg text { font-family: "DejaVu Sans", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0; font-size: 13px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend svg { display: inline; width: 36px; height: 12px; }
.status-bad { color: #A33C00; font-weight: 600; } .status-ok { color: #006B4F; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } h2 { break-after: avoid; }
  .verdict { background: none; } a { color: inherit; text-decoration: none; } }
)css";

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8Length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    const char c = text[i];
    if (n == 1 && static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
      out += "\xEF\xBF\xBD";  // a control character has no place in a page
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else if (c == '\'') {
      out += "&#39;";
    } else {
      out.append(text, i, n);
    }
    i += n;
  }
  return out;
}

std::string ShortNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", value);
  return buf;
}

HtmlCell RawCell(const std::string& html) {
  HtmlCell cell("");
  cell.html = html;
  return cell;
}

std::string HtmlTable::Render() const {
  std::string out = "<table>";
  if (!caption.empty()) out += "<caption>" + HtmlEscape(caption) + "</caption>";
  out += "<thead><tr>";
  for (const auto& h : header) out += "<th scope=\"col\">" + HtmlEscape(h) + "</th>";
  out += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& cell : row) out += "<td>" + cell.html + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

std::string HtmlPage(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta name=\"generator\" content=\"lockstep " LOCKSTEP_VERSION
         "\">"
         "<title>" +
         HtmlEscape(title) + "</title><style>" + kStyle + "</style></head>\n<body>\n" + body + "\n</body></html>\n";
}

std::string HtmlSection(const std::string& title, const std::string& body) {
  return "<section><h2>" + HtmlEscape(title) + "</h2>\n" + body + "</section>\n";
}

std::string HtmlParagraph(const std::string& text, const std::string& css_class) {
  return (css_class.empty() ? "<p>" : "<p class=\"" + css_class + "\">") + HtmlEscape(text) + "</p>\n";
}

}  // namespace lockstep
