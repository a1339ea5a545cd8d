package main

import (
	"math"
	"slices"
	"time"
)

// spread is the median of a figure over the rounds of a run and its range.
type spread struct {
	Median, Min, Max float64
	N                int // rounds that gave the figure
	Failed           int // of which failed (a negative figure)
}

// medianSpread summarises one figure over rounds. A negative value is a
// failed round (lost deliveries, failed reconnects): it counts as the worst
// outcome, +Inf when lower is better and 0 when higher is better, so a
// failure never looks like the best round. A median that is a failure is
// returned as -1, and so is a failed end of the range.
func medianSpread(vals []float64, lowerBetter bool) spread {
	s := spread{N: len(vals)}
	if len(vals) == 0 {
		return spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	v := make([]float64, 0, len(vals))
	for _, x := range vals {
		if x < 0 {
			s.Failed++
			if lowerBetter {
				x = math.Inf(1)
			} else {
				x = 0
			}
		}
		v = append(v, x)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		s.Median = v[n/2]
	} else {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	s.Min, s.Max = v[0], v[n-1]
	fix := func(x float64) float64 {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return -1
		}
		return x
	}
	s.Median, s.Min, s.Max = fix(s.Median), fix(s.Min), fix(s.Max)
	return s
}

// missedSpread summarises the rate of the step that ended a ramp over
// rounds, where 0 is a ramp whose budget ran out before any step missed:
// its limit is above every rate tried, so it sorts above them, and a median
// or maximum that is such a round is returned as 0 ("not reached").
func missedSpread(vals []float64) spread {
	v := make([]float64, len(vals))
	for i, x := range vals {
		if x <= 0 {
			x = math.Inf(1)
		}
		v[i] = x
	}
	s := medianSpread(v, false)
	s.N = len(vals)
	back := func(x float64) float64 {
		if x < 0 || math.IsInf(x, 0) {
			return 0
		}
		return x
	}
	s.Median, s.Min, s.Max = back(s.Median), back(s.Min), back(s.Max)
	return s
}

// rampPlan is a geometric ramp: rates Start, Start·Factor, … each rounded to
// two significant digits, until a step misses (after one retry) or the ramp
// has run for Budget.
type rampPlan struct {
	Start, Factor float64
	Budget        time.Duration
}

// rate is the i-th step's offered rate.
func (p rampPlan) rate(i int) float64 {
	return roundSig(p.Start*math.Pow(p.Factor, float64(i)), 2)
}

// roundSig rounds x to d significant digits (1125 → 1100, 7.5 → 7.5).
func roundSig(x float64, d int) float64 {
	if x == 0 {
		return 0
	}
	e := math.Pow(10, float64(d)-math.Ceil(math.Log10(math.Abs(x))))
	return math.Round(x*e) / e
}

// rampAction is what a ramp does after a step.
type rampAction int

const (
	rampNext  rampAction = iota // the step held: go up
	rampRetry                   // the step missed for the first time: run it again
	rampStop                    // missed twice, or out of time
)

// rampNextAction is the ramp's stop rule. A step that misses is run once
// more, because on a shared machine one stall of another process can spoil a
// short step; a step that misses twice ends the ramp (the limit is found).
// A ramp that has used its budget stops after the current step whatever it
// gave, so that the run's total time stays bounded; its last step held is
// then a floor of the server's limit and is reported as such.
func rampNextAction(held bool, try int, elapsed, budget time.Duration) rampAction {
	switch {
	case !held && try == 0 && elapsed < budget:
		return rampRetry
	case !held:
		return rampStop
	case elapsed >= budget:
		return rampStop
	}
	return rampNext
}
