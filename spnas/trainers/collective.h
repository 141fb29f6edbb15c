// The processes that train one model together (data parallel), as a trainer sees them: it
// sums tensors over them. spnas/distributed provides them over torch.distributed's store.
#ifndef SPNAS_TRAINERS_COLLECTIVE_H_
#define SPNAS_TRAINERS_COLLECTIVE_H_

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace spnas {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The element-wise sum over the ranks of a 1-D float or double CPU tensor, added in rank
  // order so that every rank gets the same bits. Called by one thread at a time, in the same
  // order on every rank. Throws when a rank fails or is gone.
  virtual at::Tensor AllReduceSum(const at::Tensor& values) = 0;
  // A collective of the same ranks whose calls are ordered apart from this one's (for another
  // thread); an abort of either stops both.
  virtual std::shared_ptr<Collective> Split(const std::string& name) = 0;
  // Tells the other ranks that this one gives up (its training failed), so that none of them
  // waits for it.
  virtual void Abort(const std::string& why) = 0;
};

// A group of one: data-parallel training in one process (the reference for several).
class SoloCollective : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  at::Tensor AllReduceSum(const at::Tensor& values) override { return values; }
  std::shared_ptr<Collective> Split(const std::string&) override { return std::make_shared<SoloCollective>(); }
  void Abort(const std::string&) override {}
};

}  // namespace spnas

#endif  // SPNAS_TRAINERS_COLLECTIVE_H_
