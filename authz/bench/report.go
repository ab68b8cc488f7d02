package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a Run.
type Report struct {
	Machine Machine       `json:"machine"`
	Options ReportOptions `json:"options"`
	// Floor is every closed-loop floor run taken together.
	Floor Result `json:"floor"`
	// Scenarios are in the order they ran.
	Scenarios []Result `json:"scenarios"`
	// Skipped names the scenarios that could not run and why.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// Machine is what the numbers were measured on.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// ReportOptions are the options the run used, defaults applied.
type ReportOptions struct {
	Concurrency int     `json:"concurrency"`
	Connections int     `json:"connections"`
	DurationSec float64 `json:"duration_sec"`
	Rounds      int     `json:"rounds"`
	Rate        float64 `json:"rate,omitempty"`
}

// Result is one scenario over every round. Latencies are in microseconds.
type Result struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	// ChecksPerSec is the median over rounds.
	ChecksPerSec float64 `json:"checks_per_sec"`
	// Ratio is the median of each round's throughput over its floor run's.
	Ratio  float64   `json:"ratio_to_floor"`
	Ratios []float64 `json:"ratios,omitempty"`
	// The percentiles are medians over rounds of each round's percentile.
	P50us  float64 `json:"p50_us"`
	P90us  float64 `json:"p90_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	// FloorP99us is the median p99 of the paired floor runs, at the same load.
	FloorP99us float64 `json:"floor_p99_us"`
	// FloorChecksPerSec is the median throughput of the paired floor runs.
	FloorChecksPerSec float64 `json:"floor_checks_per_sec"`
	// FloorCPUSecPer1000 is CPUSecPer1000 of the paired floor runs.
	FloorCPUSecPer1000 float64 `json:"floor_cpu_s_per_1000"`
	// ServiceP99us (open loop only) is p99 counted from when each Check was
	// sent rather than when it was due: without the wait to be sent.
	ServiceP99us float64 `json:"service_p99_us,omitempty"`
	// FloorServiceP99us is ServiceP99us of the paired floor runs.
	FloorServiceP99us float64 `json:"floor_service_p99_us,omitempty"`
	// CPUSecPer1000 is process CPU (load generator and server) per 1000 Checks.
	CPUSecPer1000 float64 `json:"cpu_sec_per_1000"`
	// AllocsPerCheck is heap allocations of the whole process per Check.
	AllocsPerCheck float64 `json:"allocs_per_check"`
	// Rate is the open-loop rate in Checks/s (0: closed loop).
	Rate       float64 `json:"rate,omitempty"`
	Checks     int64   `json:"checks"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// ShortRounds counts rounds that ended early because fresh tokens ran out.
	ShortRounds int `json:"short_rounds,omitempty"`
}

// report folds the rounds into a Report.
func (r *runner) report() *Report {
	rep := &Report{
		Machine: machine(),
		Options: ReportOptions{Concurrency: r.opts.Concurrency, Connections: r.opts.Connections,
			DurationSec: r.opts.Duration.Seconds(), Rounds: r.opts.Rounds, Rate: r.opts.Rate},
	}
	var floors []runStats
	for _, s := range r.scenarios {
		var runs, fls []runStats
		var ratios []float64
		for _, p := range r.pairs[s.name] {
			runs, fls = append(runs, p.run), append(fls, p.floor)
			if ft := p.floor.throughput(); ft > 0 {
				ratios = append(ratios, p.run.throughput()/ft)
			}
			// The floor row is the closed-loop floor, unless every run is open loop.
			if !s.http && (p.floor.rate == 0 || r.opts.Rate > 0) {
				floors = append(floors, p.floor)
			}
		}
		res := summarize(s, runs)
		res.Ratio, res.Ratios = median(ratios), ratios
		res.FloorP99us = medianOf(fls, func(st runStats) float64 { return micros(st.percentile(0.99)) })
		res.FloorChecksPerSec = medianOf(fls, runStats.throughput)
		res.FloorCPUSecPer1000 = medianOf(fls, runStats.cpuPer1000)
		res.FloorServiceP99us = medianOf(fls, servicePercentile(0.99))
		rep.Scenarios = append(rep.Scenarios, res)
	}
	rep.Floor = summarize(floor, floors)
	rep.Floor.Ratio = 1
	return rep
}

// summarize takes the median of each figure over runs.
func summarize(s *scenario, runs []runStats) Result {
	res := Result{Scenario: s.name, Description: s.desc}
	res.ChecksPerSec = medianOf(runs, runStats.throughput)
	res.P50us = medianOf(runs, func(st runStats) float64 { return micros(st.percentile(0.50)) })
	res.P90us = medianOf(runs, func(st runStats) float64 { return micros(st.percentile(0.90)) })
	res.P99us = medianOf(runs, func(st runStats) float64 { return micros(st.percentile(0.99)) })
	res.P999us = medianOf(runs, func(st runStats) float64 { return micros(st.percentile(0.999)) })
	res.CPUSecPer1000 = medianOf(runs, runStats.cpuPer1000)
	res.AllocsPerCheck = medianOf(runs, runStats.allocsPerCheck)
	res.Rate = medianOf(runs, func(st runStats) float64 { return st.rate })
	res.ServiceP99us = medianOf(runs, servicePercentile(0.99))
	for _, st := range runs {
		res.Checks += st.checks
		res.Errors += st.errors
		if res.FirstError == "" {
			res.FirstError = st.firstErr
		}
		if st.exhausted {
			res.ShortRounds++
		}
	}
	return res
}

// servicePercentile reads an open-loop run's send-to-answer percentile.
func servicePercentile(p float64) func(runStats) float64 {
	return func(st runStats) float64 { return micros(percentile(st.service, p)) }
}

func medianOf(runs []runStats, f func(runStats) float64) float64 {
	xs := make([]float64, len(runs))
	for i, st := range runs {
		xs[i] = f(st)
	}
	return median(xs)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// WriteTable prints the report as a table, with the machine and the
// conditions above it and notes below.
func (rep *Report) WriteTable(w io.Writer) error {
	m, o := rep.Machine, rep.Options
	fmt.Fprintf(w, "tokenwise bench: %d CPUs (GOMAXPROCS %d), %s, %s %s/%s\n", m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.Arch)
	load := fmt.Sprintf("closed loop, %d Checks in flight", o.Concurrency)
	if o.Rate > 0 {
		load = fmt.Sprintf("open loop at %.0f Checks/s, %d workers", o.Rate, o.Concurrency)
	}
	fmt.Fprintf(w, "%s over %d HTTP/2 connections; %d rounds of %gs, interleaved floor/scenario; figures are medians over rounds\n",
		load, o.Connections, o.Rounds, o.DurationSec)
	fmt.Fprintln(w, "CPU and allocations are the whole process: load generator, gRPC and server together (the floor row is the generator + gRPC share)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append([]Result{rep.Floor}, rep.Scenarios...)
	width := 16 // names are left-aligned in a right-aligned table: pad to the longest
	for _, res := range rows {
		width = max(width, len(res.Scenario))
	}
	fmt.Fprintf(tw, "%-*s\tChecks/s\tx floor\tp50\tp90\tp99\tp99.9\tCPU s/1k\tallocs/Check\terrors\t\n", width, "scenario")
	for _, res := range rows {
		fmt.Fprintf(tw, "%-*s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.0f\t%d\t\n", width, res.Scenario, res.ChecksPerSec, ratioText(res),
			us(res.P50us), us(res.P90us), us(res.P99us), us(res.P999us), res.CPUSecPer1000, res.AllocsPerCheck, res.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rep.writeNotes(w)
	return nil
}

// writeNotes explains open-loop rows, short rounds, errors and skips.
func (rep *Report) writeNotes(w io.Writer) {
	var notes []string
	for _, res := range rep.Scenarios {
		if res.Rate > 0 {
			notes = append(notes, fmt.Sprintf("%s: open loop at %.0f Checks/s; p99 %s from when due, %s from when sent (the floor at the same rate: %s, %s)",
				res.Scenario, res.Rate, us(res.P99us), us(res.ServiceP99us), us(res.FloorP99us), us(res.FloorServiceP99us)))
		}
		if res.ShortRounds > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d round(s) ended early when the pre-minted tokens ran out; measured over the time they ran",
				res.Scenario, res.ShortRounds))
		}
		if res.Errors > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d unexpected answers, first: %s", res.Scenario, res.Errors, res.FirstError))
		}
	}
	for _, res := range rep.Scenarios {
		if strings.HasPrefix(res.Scenario, "http-") {
			notes = append(notes, fmt.Sprintf("%s: its floor is a no-op HTTP server driven by the same HTTP/1.1 keep-alive client (%.0f/s, p99 %s, CPU s/1k %.3f)",
				res.Scenario, res.FloorChecksPerSec, us(res.FloorP99us), res.FloorCPUSecPer1000))
		}
	}
	for name, why := range rep.Skipped {
		notes = append(notes, fmt.Sprintf("%s: skipped: %s", name, why))
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// ratioText is the ratio to the floor, or "-" for an open-loop row, whose
// throughput is the rate it was given.
func ratioText(res Result) string {
	if res.Rate > 0 && res.Scenario != floor.name {
		return "-"
	}
	return fmt.Sprintf("%.2f", res.Ratio)
}

// us renders microseconds compactly: 850µs, 1.25ms.
func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func machine() Machine {
	return Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// cpuModel is the first "model name" in /proc/cpuinfo ("unknown" elsewhere).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}
