// Speculative verification of one node of a draft tree (a chain is the tree whose draft i has
// draft i - 1 as parent). A node's row holds the target's logits after the path to it; after
// stages 0-5 its distribution p is what `sample` would draw from there. The node's children
// are tried in draft order with the recursive rejection rule (SpecInfer; Leviathan et al. for
// one child): child k (token x, proposal q_k) is accepted with probability
// min(1, r_k(x) / (q_k(x) R_k)), where r_0 = p's masses, R_k = sum r_k, and each rejection
// leaves r_{k+1} = max(r_k - q_k R_k, 0); when every child is rejected the node emits a token
// drawn from the last residual (from p itself when the node has no child: the bonus token).
// Greedy rows accept the first child equal to p's argmax and otherwise emit the argmax.
// Masses are the draw's fixed-point integers, so a node's verdict depends only on its logits,
// parameters, drafts, seed and offset, never on the batch, the threads or the device.
#pragma once
#include "fastsample/row_sampler.h"

namespace fastsample {

// A verification call's drafts, beside BatchArgs: row r is node r % (num_drafts + 1) of request
// r / (num_drafts + 1)'s draft tree (node 0 the root, node i + 1 draft i).
struct VerifyArgs {
  const int64_t* draft_tokens = nullptr;  // [requests, draft_stride]; null: not a verification
  const int64_t* parents = nullptr;       // same layout; null: each request's drafts are a chain
  int64_t draft_stride = 0;
  int64_t num_drafts = 0;                 // S
  const float* draft_probs = nullptr;     // draft i of request b's proposal row: draft_probs +
  int64_t probs_request_stride = 0;       //   b * probs_request_stride + i * probs_draft_stride;
  int64_t probs_draft_stride = 0;         //   null: one-hot proposals
  int64_t* out_child = nullptr;           // [batch]: the accepted child's draft index, or -1
};

FS_CODE_BEGIN

// Rejected children a node can remember; Python refuses trees with more children per node.
constexpr int kMaxDraftChildren = 16;

// One node's drafts: the request's draft tokens and tree, and this node's place in it.
struct NodeDrafts {
  const int64_t* tokens = nullptr;   // the request's S drafts (-1: none, never accepted)
  const int64_t* parents = nullptr;  // their parents' draft indices (-1: the root), or null: a chain
  const float* q = nullptr;          // draft i's proposal: q + i * q_stride; null: one-hot
  int64_t q_stride = 0;
  int64_t num_drafts = 0;            // S
  int64_t node = 0;                  // 0: the root; i + 1: draft i
  int64_t vocab = 0;

  // The drafts that are this node's children lie in [first, last).
  FS_HOST_DEVICE int64_t first() const { return parents ? 0 : node; }
  FS_HOST_DEVICE int64_t last() const {
    return parents ? num_drafts : (node < num_drafts ? node + 1 : num_drafts);
  }
  FS_HOST_DEVICE bool child(int64_t i) const {
    const int64_t parent = parents ? parents[i] : i - 1;
    return parent == node - 1 && tokens[i] >= 0 && tokens[i] < vocab;
  }
  // q_i(token), read as 0 where the proposal is negative or NaN and as 1 above 1.
  FS_HOST_DEVICE double proposal(int64_t i, int64_t token) const {
    if (q == nullptr) return token == tokens[i] ? 1.0 : 0.0;
    const float v = q[i * q_stride + token];
    return v > 0.0f ? (v < 1.0f ? double(v) : 1.0) : 0.0;
  }
};

// Row `row` of a verification call (VerifyArgs), read only once its keep-set is known so that
// none of the node's fields stays live through the filters.
struct NodeRow {
  const VerifyArgs* args;
  int64_t row;
};

FS_HOST_DEVICE inline NodeDrafts node_drafts(const NodeRow& at, int64_t vocab) {
  const VerifyArgs& v = *at.args;
  const int64_t row = at.row;
  const int64_t positions = v.num_drafts + 1;
  const int64_t request = row / positions;
  NodeDrafts n;
  n.tokens = v.draft_tokens + request * v.draft_stride;
  n.parents = v.parents ? v.parents + request * v.draft_stride : nullptr;
  n.q = v.draft_probs ? v.draft_probs + request * v.probs_request_stride : nullptr;
  n.q_stride = v.probs_draft_stride;
  n.num_drafts = v.num_drafts;
  n.node = row % positions;
  n.vocab = vocab;
  return n;
}

// What the rejections of a node's first n children leave of a kept token's mass: r_n (above).
struct Residual {
  static constexpr bool kIsMass = false;
  const NodeDrafts* node = nullptr;
  int64_t rejected[kMaxDraftChildren];  // draft indices, in the order they were tried
  uint64_t totals[kMaxDraftChildren];   // R_k when child k was tried
  int n = 0;

  FS_HOST_DEVICE uint64_t operator()(int64_t token, uint64_t mass) const {
    uint64_t r = mass;
    for (int k = 0; k < n && r != 0; ++k) {
      // q <= 1 and R_k < 2^63: the product fits, and r never goes below 0.
      const uint64_t cut = uint64_t(node->proposal(rejected[k], token) * double(totals[k]));
      r = r > cut ? r - cut : 0;
    }
    return r;
  }
};

// A node's verdict: the accepted child (its draft index, -1: none) and the token the row
// contributes (the accepted draft, else the emitted one; -1 when the node has no valid token).
struct RowVerdict {
  int64_t token;
  int64_t child;
  bool valid;
};

// The fixed-point mass of one token of the view under the keep-set, as the draw weighs it.
template <class View>
FS_HOST_DEVICE uint64_t kept_mass_of(const View& row, const RowKeep& keep, const RowParams& p,
                                     int64_t token) {
  const Temperature temp(p.temperature);
  const uint32_t key = row.key(token);
  float d[1], m[1];
  chunk_distance(&key, 1, keep.lo_key, keep.hi_key, temp, temp.z_of_key(keep.hi_key), d);
  chunk_mass(d, 1, m);
  return mass_of(m[0]);
}

// The children of a sampled node in turn (`view`: the row, or its top-k candidate list; `row`:
// the row, to read a draft's key). Returns the draw: the accepted draft or the emitted token,
// with the keep-set's total mass (what processed logprobs normalize by).
template <class Ctx, class View, class Row>
FS_HOST_DEVICE RowDraw judge_children(Ctx& ctx, const View& view, const Row& row,
                                      const RowKeep& keep, const RowParams& p,
                                      const NodeDrafts& node, const uint32_t* gmax,
                                      int64_t* child) {
  const Temperature temp(p.temperature);
  const MassWeight mass{temp, temp.z_of_key(keep.hi_key)};  // the residual's, after a rejection
  Residual residual;
  residual.node = &node;
  uint64_t keep_total = 0;  // the keep-set's mass: summed when the first child is tried
  for (int64_t i = node.first(); i < node.last() && residual.n < kMaxDraftChildren; ++i) {
    if (!node.child(i)) continue;
    const int64_t x = node.tokens[i];
    // R_n: the keep-set's mass, then what the rejections so far leave of it.
    uint64_t total;
    if (residual.n == 0) {
      total = keep_total = keep_set_total(ctx, view, keep, p, gmax);
    } else {
      total = ctx.sum_u64(local_keep_set_weight(ctx, view, keep, mass, residual, gmax));
    }
    const uint64_t r = residual(x, kept_mass_of(row, keep, p, x));
    const double coin = row_accept_coin(uint64_t(p.seed), uint64_t(p.offset), uint32_t(residual.n));
    // Accept with probability min(1, r / (q R)): a token without mass never passes.
    if (r > 0 && coin * node.proposal(i, x) * double(total) < double(r)) {
      *child = i;
      return RowDraw{x, keep_total};
    }
    residual.rejected[residual.n] = i;
    residual.totals[residual.n] = total;
    ++residual.n;
  }
  // No child (a leaf, or no valid draft): the token comes from p, whose draw sums the total.
  if (residual.n == 0) return draw_from_keep_set(ctx, view, keep, p, gmax);
  RowDraw draw = draw_from_keep_set(ctx, view, keep, p, gmax, residual);
  // Rejections that left no mass (q covered p to the last unit, which exact arithmetic would
  // reject with probability 0): the token comes from p.
  if (draw.token < 0) draw = draw_from_keep_set(ctx, view, keep, p, gmax);
  return RowDraw{draw.token, keep_total};
}

// One node after stages 0-3: its keep-set, its verdict, and stage 7 for the token it
// contributes.
template <class Ctx, class View>
FS_HOST_DEVICE RowVerdict verify_view(Ctx& ctx, const View& row, const RowParams& p,
                                      const RowScratch& scratch, const RowLogprobs& lp,
                                      const NodeRow& at) {
  ListView list{};
  bool on_list = false;
  const RowKeep keep = row_keep_set_fast(ctx, row, p, scratch, &list, &on_list);
  const NodeDrafts node = node_drafts(at, row.size());
  int64_t child = -1;
  RowDraw draw{-1, 0};
  if (keep.valid && keep.greedy) {
    for (int64_t i = node.first(); i < node.last(); ++i) {
      if (node.child(i) && node.tokens[i] == keep.argmax) {
        child = i;
        break;
      }
    }
    draw.token = keep.argmax;
  } else if (keep.valid && on_list) {
    auto solo = ctx.solo();
    draw = judge_children(solo, list, row, keep, p, node, nullptr, &child);
  } else if (keep.valid) {
    draw = judge_children(ctx, row, row, keep, p, node, scratch.group_max, &child);
  }
  if (lp.on && lp.processed) {
    processed_logprobs(ctx, row, p, keep, draw, on_list, list, scratch, lp.out);
  } else if (lp.on) {
    row_raw_logprobs(ctx, row, p, keep, draw.token, scratch, lp.out);
  }
  return RowVerdict{draw.token, child, keep.valid && draw.token >= 0};
}

// One node end to end: stages 0-3 when the row has edits, then verify_view.
template <class Ctx, DType D>
FS_HOST_DEVICE RowVerdict verify_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& edits,
                                     const RowParams& p, const RowScratch& scratch,
                                     const RowLogprobs& lp, const NodeRow& at) {
  return with_edited_view(ctx, raw, edits, scratch, records_raw_mass(lp, p),
                          [&](const auto& row) {
    return verify_view(ctx, row, p, scratch, lp, at);
  });
}

FS_CODE_END
}  // namespace fastsample
