// A plain LibTorch training loop, recorded with Lockstep's StepRecorder: a small MLP with
// dropout on synthetic data, SGD, a checkpoint every 10 steps. Build it against the
// installed package (find_package(Lockstep)); then `lockstep diff RUN_A RUN_B` and
// `lockstep inspect RUN` read what it wrote. At the end it reads its own log back with the
// step-log reader, as a program of yours can.
//
//   record_libtorch RUN_DIR STEPS            a fresh run
//   record_libtorch RUN_DIR STEPS RESUME     resume from RUN_DIR/model-RESUME.pt
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include <lockstep/recorder.h>
#include <lockstep/step_log.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: record_libtorch RUN_DIR STEPS [RESUME_STEP]\n";
    return 2;
  }
  const std::string run = argv[1];
  const int64_t steps = std::atoll(argv[2]), resume = argc > 3 ? std::atoll(argv[3]) : 0;
  const int64_t batch = 8, samples = 256;

  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({samples, 16}), y = torch::randn({samples, 1});  // the data set
  torch::nn::Sequential model(torch::nn::Linear(16, 32), torch::nn::ReLU(), torch::nn::Dropout(0.1),
                              torch::nn::Linear(32, 1));
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.05));

  std::unique_ptr<lockstep::StepRecorder> recorder;
  lockstep::Status st;
  if (resume > 0) {  // the checkpoint holds the model, the optimizer and the CPU generator
    torch::load(model, run + "/model-" + std::to_string(resume) + ".pt");
    torch::load(optimizer, run + "/optimizer-" + std::to_string(resume) + ".pt");
    torch::Tensor rng;
    torch::load(rng, run + "/rng-" + std::to_string(resume) + ".pt");
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    cpu.set_state(rng);
    st = lockstep::StepRecorder::Resume(run, resume, {}, &recorder);
  } else {
    st = lockstep::StepRecorder::Create(run, {{"lr", 0.05}, {"batch_size", batch}, {"model", "mlp 16-32-1"}}, {},
                                        &recorder);
  }
  if (!st.ok()) {
    std::cerr << "record_libtorch: " << st.ToString() << "\n";
    return 1;
  }
  for (int64_t step = resume + 1; step <= steps; ++step) {
    recorder->BeginStep();  // the generator states as the step begins
    const int64_t start = ((step - 1) * batch) % samples;
    const torch::Tensor ids = torch::arange(start, start + batch);
    optimizer.zero_grad();
    const torch::Tensor loss = torch::mse_loss(model->forward(x.index_select(0, ids)), y.index_select(0, ids));
    loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    std::vector<int64_t> sample_ids(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + batch);
    st = recorder->EndStep({step, {sample_ids}, loss.item<float>(), 0.05, static_cast<float>(grad_norm)});
    if (st.ok() && step % 10 == 0) {
      torch::save(model, run + "/model-" + std::to_string(step) + ".pt");
      torch::save(optimizer, run + "/optimizer-" + std::to_string(step) + ".pt");
      torch::save(at::detail::getDefaultCPUGenerator().get_state(), run + "/rng-" + std::to_string(step) + ".pt");
      st = recorder->Flush();  // the log durably covers the checkpoint
    }
    if (!st.ok()) {
      std::cerr << "record_libtorch: " << st.ToString() << "\n";
      return 1;
    }
  }
  st = recorder->Close();
  lockstep::StepLogContents log;
  if (st.ok()) st = lockstep::ReadStepLog(run + "/steps.jsonl.zst", &log);
  if (!st.ok()) {
    std::cerr << "record_libtorch: " << st.ToString() << "\n";
    return 1;
  }
  std::cout << run << ": " << log.records.size() << " steps recorded, the last with loss " << log.records.back().loss
            << "\n";
  return 0;
}
