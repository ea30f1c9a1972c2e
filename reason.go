package batchenrich

import "errors"

// FailureReasoner is implemented by errors that can say in a few words why
// an item failed, without the details that vary from item to item or that
// a column of invalid rows does not need (a host and port, a URL). For
// example httpenrich's *Error says "status 404 after 1 attempt".
type FailureReasoner interface {
	FailureReason() string
}

// FailureReason returns why an item failed, to store in a column of
// invalid rows or to count: the reason given by the first error in err's
// chain that implements FailureReasoner; otherwise the text of the
// *ItemError's cause (or of err, if it is no *ItemError), as it is,
// without the "batchenrich: batch N item I (key): " that the *ItemError
// adds. It returns "" for nil.
//
//	row = append(row, batchenrich.FailureReason(r.Err)) // "status 404 after 1 attempt"
func FailureReason(err error) string {
	if err == nil {
		return ""
	}
	var fr FailureReasoner
	if errors.As(err, &fr) {
		return fr.FailureReason()
	}
	var ie *ItemError
	if errors.As(err, &ie) && ie.Err != nil {
		err = ie.Err
	}
	return err.Error()
}
