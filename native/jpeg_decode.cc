// libjpeg-turbo decode + squish of one JPEG in memory (jpeg_decode.h): plain C++ with no
// N-API, so the fuzz harness (fuzz/jpeg_decoder.cc) links it alone. jpeg.cc runs it on the pool.
#include "jpeg_decode.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>

#include "input_limits.h"

#ifdef TORCHTS_HAVE_JPEG
#include <jpeglib.h>
#endif

namespace torchts {

#ifdef TORCHTS_HAVE_JPEG
namespace {

// Decoded images above this many pixels (after DCT scaling) are left to sharp, whose pixel
// limit and tiled decoding are made for them.
constexpr size_t kMaxDecodedPixels = size_t(1) << 26;

// ---- Resampling, made to give what sharp's presized path gives (its fill resize with the
// "linear" kernel, measured on libvips 8.17), so a batch is nearly the same whichever decoder
// made it:
// - shrinking by r = in/out > 1: a box average over k = max(1, floor(r / 2)) pixels, then a
//   triangle filter of radius r/k (in boxes) centred at (i + 0.5) * r/k, edges replicated;
// - enlarging: bilinear at x = i * in/out - 0.5, clamped to the image.
// Both fold into one list of weights per output index over the input axis.

struct Taps {
  std::vector<int> first;      // first input index of each output index
  std::vector<int> count;      // number of inputs
  std::vector<float> weights;  // `count` weights per output, at stride `width`
  int width = 0;
};

Taps axisTaps(int in, int out) {
  std::vector<std::vector<double>> dense(out);  // weights over [first, first + size)
  std::vector<int> first(out);
  const double r = double(in) / out;
  for (int i = 0; i < out; ++i) {
    std::vector<double>& w = dense[i];
    if (in == out) {
      first[i] = i;
      w = {1.0};
      continue;
    }
    if (r < 1) {  // enlarging
      const double x = std::min(double(in - 1), std::max(0.0, i * r - 0.5));
      const int x0 = int(x);
      const double f = x - x0;
      first[i] = x0;
      w = {1 - f};
      if (x0 + 1 < in && f > 0) w.push_back(f);
      continue;
    }
    const int k = std::max(1, int(r / 2));
    const int boxes = (in + k - 1) / k;
    const double radius = r / k;  // >= 1 because k <= r / 2 or k = 1
    const double centre = (i + 0.5) * radius;
    const int b0 = int(std::floor(centre - radius));
    const int b1 = int(std::ceil(centre + radius));
    const int lo = std::max(0, std::min(boxes - 1, b0)) * k;
    const int hi = std::min(in, (std::max(0, std::min(boxes - 1, b1)) + 1) * k);
    first[i] = lo;
    w.assign(hi - lo, 0.0);
    double total = 0;
    for (int b = b0; b <= b1; ++b) {
      const double d = std::fabs((b + 0.5 - centre) / radius);
      if (d >= 1) continue;
      const int box = std::max(0, std::min(boxes - 1, b));  // edge boxes repeat
      for (int j = 0; j < k; ++j) w[std::min(box * k + j, in - 1) - lo] += (1 - d) / k;
      total += 1 - d;
    }
    for (double& v : w) v /= total;
  }
  Taps taps;
  taps.first = first;
  taps.count.resize(out);
  for (const auto& w : dense) taps.width = std::max(taps.width, int(w.size()));
  taps.weights.assign(size_t(out) * taps.width, 0.f);
  for (int i = 0; i < out; ++i) {
    taps.count[i] = int(dense[i].size());
    for (size_t j = 0; j < dense[i].size(); ++j) taps.weights[size_t(i) * taps.width + j] = float(dense[i][j]);
  }
  return taps;
}

inline uint8_t toByte(float v) {
  return uint8_t(std::min(255.f, std::max(0.f, v + 0.5f)));
}

// Four floats: one RGB pixel plus a lane that is ignored. With GCC/Clang a vector, so each tap
// is one multiply-add for the whole pixel.
#if defined(__GNUC__)
typedef float Pixel4 __attribute__((vector_size(16)));
#else
struct Pixel4 {
  float v[4];
  float operator[](int i) const { return v[i]; }
  Pixel4& operator+=(const Pixel4& o) {
    for (int i = 0; i < 4; ++i) v[i] += o.v[i];
    return *this;
  }
  friend Pixel4 operator*(float c, const Pixel4& p) { return {{c * p.v[0], c * p.v[1], c * p.v[2], c * p.v[3]}}; }
};
#endif
inline Pixel4 loadPixel(const float* p) {
  Pixel4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Horizontal taps with offsets clamped and in floats: output x reads row[offsets[x*width+k]].
struct RowTaps {
  int width = 0;
  std::vector<float> weights;
  std::vector<int> offsets;
};

RowTaps rowTaps(const Taps& t, int in, int side) {
  RowTaps r;
  r.width = t.width;
  r.weights.assign(size_t(t.width) * side, 0.f);
  r.offsets.assign(size_t(t.width) * side, 0);
  for (int x = 0; x < side; ++x) {
    for (int k = 0; k < t.width; ++k) {
      const size_t i = size_t(x) * t.width + k;
      if (k < t.count[x]) r.weights[i] = t.weights[i];
      r.offsets[i] = std::min(t.first[x] + k, in - 1) * 3;
    }
  }
  return r;
}

// The weights are non-negative and sum to 1, so every value is within [0, 255] up to rounding
// error and truncating v + 0.5 rounds it.
inline void storePixel(const Pixel4& a, uint8_t* out) {
#if defined(__GNUC__)
  typedef int Int4 __attribute__((vector_size(16)));
  const Int4 v = __builtin_convertvector(a + 0.5f, Int4);
  out[0] = uint8_t(std::min(v[0], 255));
  out[1] = uint8_t(std::min(v[1], 255));
  out[2] = uint8_t(std::min(v[2], 255));
#else
  out[0] = toByte(a[0]);
  out[1] = toByte(a[1]);
  out[2] = toByte(a[2]);
#endif
}

// One row of RGB floats (plus one float of padding) -> side RGB bytes. Two output pixels per
// step keep two independent accumulation chains in flight.
void filterRow(const float* row, const RowTaps& taps, int side, uint8_t* out) {
  const int n = taps.width;
  int x = 0;
  for (; x + 2 <= side; x += 2) {
    const float* w0 = &taps.weights[size_t(x) * n];
    const int* o0 = &taps.offsets[size_t(x) * n];
    Pixel4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
    for (int k = 0; k < n; ++k) {
      a += w0[k] * loadPixel(row + o0[k]);
      b += w0[n + k] * loadPixel(row + o0[n + k]);
    }
    storePixel(a, out + x * 3);
    storePixel(b, out + x * 3 + 3);
  }
  for (; x < side; ++x) {
    Pixel4 a = {0, 0, 0, 0};
    for (int k = 0; k < n; ++k) a += taps.weights[size_t(x) * n + k] * loadPixel(row + taps.offsets[size_t(x) * n + k]);
    storePixel(a, out + x * 3);
  }
}

// src: h rows of w RGB pixels, `stride` bytes apart -> out: side x side RGB. Each output row:
// the vertical taps (a plain conversion when h == side) into one float row, then the
// horizontal taps round once into `out`.
void squish(const uint8_t* src, int w, int h, size_t stride, int side, uint8_t* out,
            std::vector<float>& buffer) {
  const RowTaps ht = rowTaps(axisTaps(w, side), w, side);
  const Taps vt = axisTaps(h, side);
  const size_t rowLen = size_t(w) * 3;
  buffer.assign(rowLen + 1, 0.f);  // +1: the ignored fourth lane of the last pixel
  float* row = buffer.data();
  for (int y = 0; y < side; ++y) {
    const float* wy = &vt.weights[size_t(y) * vt.width];
    const uint8_t* s0 = src + size_t(vt.first[y]) * stride;
    for (size_t x = 0; x < rowLen; ++x) row[x] = wy[0] * s0[x];
    for (int k = 1; k < vt.count[y]; ++k) {
      const uint8_t* s = src + size_t(vt.first[y] + k) * stride;
      const float c = wy[k];
      for (size_t x = 0; x < rowLen; ++x) row[x] += c * s[x];
    }
    filterRow(row, ht, side, out + size_t(y) * side * 3);
  }
}

// ---- libjpeg error handling: errors and warnings (corrupt or truncated data) jump back to
// the setjmp in decodeScaled, whose frame holds no C++ object with a destructor.

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jumpOnError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void jumpOnWarning(j_common_ptr cinfo, int level) {
  if (level < 0) jumpOnError(cinfo);  // level -1: a warning (premature end, bad data)
}

// The DCT scale 1/f sharp's shrink-on-load picks for a fill resize to side x side: the largest
// f in {8, 4, 2} not above the smaller of the two shrinks, halved when that shrink's integer
// part equals f (libvips' guard against libjpeg's rounding). The rest is left to squish().
int shrinkOnLoad(unsigned width, unsigned height, int side) {
  const double shrink = std::min(double(width) / side, double(height) / side);
  int f = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (f > 1 && int(shrink) == f) f /= 2;
  return f;
}

enum class Refusal { none, libjpeg, colourSpace, tooLarge, memory };

// Decodes `data` at DCT scale into scratch.decoded (RGB rows). Plain C inside the setjmp frame.
// The image is the top-left floor(width / f) x floor(height / f) of the decoded rows: libvips'
// jpegload drops the partial last block column and row when it shrinks (libjpeg rounds up), and
// keeping them shifts the whole resize against sharp's by up to half a pixel.
Refusal decodeScaled(const uint8_t* data, size_t size, int side, JpegScratch& scratch,
                     unsigned* outWidth, unsigned* outHeight, size_t* outStride, char* message) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jumpOnError;
  err.pub.emit_message = jumpOnWarning;
  err.message[0] = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    return Refusal::libjpeg;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (int64_t(cinfo.image_width) * cinfo.image_height > kMaxJpegSourcePixels) {
    jpeg_destroy_decompress(&cinfo);
    return Refusal::tooLarge;  // before any allocation: the header alone costs nothing
  }
  const J_COLOR_SPACE cs = cinfo.jpeg_color_space;
  if (cs != JCS_YCbCr && cs != JCS_RGB && cs != JCS_GRAYSCALE) {
    jpeg_destroy_decompress(&cinfo);
    return Refusal::colourSpace;
  }
  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = shrinkOnLoad(cinfo.image_width, cinfo.image_height, side);
  jpeg_calc_output_dimensions(&cinfo);
  const size_t pixels = size_t(cinfo.output_width) * cinfo.output_height;
  if (pixels > kMaxDecodedPixels || cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    return Refusal::tooLarge;
  }
  const size_t stride = size_t(cinfo.output_width) * 3;
  // A throwing resize would unwind through this frame, which holds no destructors; still,
  // report it as a refusal so the caller falls back to sharp.
  try {
    scratch.decoded.resize(stride * cinfo.output_height);
  } catch (const std::bad_alloc&) {
    jpeg_destroy_decompress(&cinfo);
    return Refusal::memory;
  }
  jpeg_start_decompress(&cinfo);
  uint8_t* base = scratch.decoded.data();
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[8];
    const unsigned n = std::min(8u, cinfo.output_height - cinfo.output_scanline);
    for (unsigned k = 0; k < n; ++k) rows[k] = base + (cinfo.output_scanline + k) * stride;
    jpeg_read_scanlines(&cinfo, rows, n);
  }
  jpeg_finish_decompress(&cinfo);
  *outWidth = std::max(1u, std::min(cinfo.output_width, cinfo.image_width / cinfo.scale_denom));
  *outHeight = std::max(1u, std::min(cinfo.output_height, cinfo.image_height / cinfo.scale_denom));
  *outStride = stride;
  jpeg_destroy_decompress(&cinfo);
  return Refusal::none;
}

}  // namespace

std::string decodeJpegPresized(const uint8_t* data, size_t size, int presize, uint8_t* out,
                               JpegScratch& scratch) {
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) return "not a JPEG (no SOI marker)";
  char message[JMSG_LENGTH_MAX] = {0};
  unsigned w = 0, h = 0;
  size_t stride = 0;
  switch (decodeScaled(data, size, presize, scratch, &w, &h, &stride, message)) {
    case Refusal::none:
      break;
    case Refusal::libjpeg:
      return std::string("libjpeg: ") + message;
    case Refusal::colourSpace:
      return "colour space is not YCbCr, RGB or grayscale (CMYK/YCCK): left to sharp";
    case Refusal::tooLarge:
      return "image too large for the native decoder: left to sharp";
    case Refusal::memory:
      return "out of memory decoding the image";
  }
  squish(scratch.decoded.data(), int(w), int(h), stride, presize, out, scratch.rows);
  return "";
}

#else  // no libjpeg at build time: the data pipeline decodes everything with sharp.

std::string decodeJpegPresized(const uint8_t*, size_t, int, uint8_t*, JpegScratch&) {
  return "torchts was built without libjpeg";
}

#endif

}  // namespace torchts
