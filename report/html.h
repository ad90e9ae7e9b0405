// The pieces every report page is made of: escaped text, numbers as people read them,
// tables, and the page itself with its inline stylesheet. One self-contained file: nothing
// here refers to a script, font, image or address outside it. No LibTorch here.
#pragma once

#include <string>
#include <vector>

namespace lockstep {

// `text` with &, <, >, " and ' escaped, for element content and attribute values alike.
// Bytes that are not valid UTF-8 become U+FFFD, so a hostile run name cannot break the page.
std::string HtmlEscape(const std::string& text);

// A number as a chart label or table cell shows it: 4 significant digits, "NaN", "inf".
std::string ShortNumber(double value);

// A table cell: text (escaped here) or, made by RawCell, markup the caller built and escaped.
// Which one is a type, never a marker inside the text, so no run's data can pass as markup.
struct HtmlCell {
  HtmlCell(const std::string& text) : html(HtmlEscape(text)) {}  // NOLINT: text converts implicitly
  HtmlCell(const char* text) : html(HtmlEscape(text)) {}         // NOLINT
  std::string html;
};
HtmlCell RawCell(const std::string& html);

// A table: a caption, a header row, then rows of cells.
struct HtmlTable {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<HtmlCell>> rows;
  std::string Render() const;
};

// A page: the title (escaped), then `body` (markup). The stylesheet is inline, readable in
// print (no background colours needed to read a figure) and in dark and light viewers.
std::string HtmlPage(const std::string& title, const std::string& body);

// A section: <section><h2>title</h2>body</section>, the title escaped.
std::string HtmlSection(const std::string& title, const std::string& body);

// A paragraph of escaped text with an optional CSS class ("verdict ok", "note").
std::string HtmlParagraph(const std::string& text, const std::string& css_class = "");

}  // namespace lockstep
