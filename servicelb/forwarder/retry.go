package forwarder

import (
	"errors"
	"time"
)

// resourceProblem is iptables' exit status when it could not take the xtables lock
// or the kernel refused a table that changed under it (EAGAIN). Both pass: the LB
// pod's containers, one per Service port, all start at once in one netns, and each
// has its own /run, so legacy iptables' lock file does not order them.
const resourceProblem = 4

// retryDelays are the pauses between attempts of a transient failure.
func retryDelays() []time.Duration {
	return []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
}

// transient reports whether err is iptables' resource problem; go-iptables' *Error
// has ExitStatus.
func transient(err error) bool {
	var exit interface{ ExitStatus() int }
	return errors.As(err, &exit) && exit.ExitStatus() == resourceProblem
}

// retry calls fn until it succeeds, fails for good, or the delays run out.
func retry(fn func() error) error {
	err := fn()
	for _, d := range retryDelays() {
		if !transient(err) {
			return err
		}
		time.Sleep(d)
		err = fn()
	}
	return err
}

// retrying is an iptablesRunner that retries each call's transient failures.
type retrying struct{ ipt iptablesRunner }

var _ iptablesRunner = retrying{}

func (r retrying) ChainExists(table, chain string) (ok bool, err error) {
	err = retry(func() (e error) { ok, e = r.ipt.ChainExists(table, chain); return e })
	return ok, err
}

func (r retrying) ClearChain(table, chain string) error {
	return retry(func() error { return r.ipt.ClearChain(table, chain) })
}

func (r retrying) List(table, chain string) (rules []string, err error) {
	err = retry(func() (e error) { rules, e = r.ipt.List(table, chain); return e })
	return rules, err
}

func (r retrying) Append(table, chain string, rulespec ...string) error {
	return retry(func() error { return r.ipt.Append(table, chain, rulespec...) })
}

func (r retrying) Exists(table, chain string, rulespec ...string) (ok bool, err error) {
	err = retry(func() (e error) { ok, e = r.ipt.Exists(table, chain, rulespec...); return e })
	return ok, err
}

func (r retrying) Insert(table, chain string, pos int, rulespec ...string) error {
	return retry(func() error { return r.ipt.Insert(table, chain, pos, rulespec...) })
}

func (r retrying) Delete(table, chain string, rulespec ...string) error {
	return retry(func() error { return r.ipt.Delete(table, chain, rulespec...) })
}

func (r retrying) ClearAndDeleteChain(table, chain string) error {
	return retry(func() error { return r.ipt.ClearAndDeleteChain(table, chain) })
}
