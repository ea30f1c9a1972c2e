package batchenrich

// checkFuncs refuses the Func adapters holding a nil function: they are
// non-nil interfaces that would panic at Run time.
func checkFuncs[T, R any](src Source[T], enr Enricher[T, R], sink Sink[T, R], args argNames) error {
	if f, ok := src.(SourceFunc[T]); ok && f == nil {
		return optionErr(args[0], "nil SourceFunc")
	}
	if f, ok := enr.(EnricherFunc[T, R]); ok && f == nil {
		return optionErr(args[1], "nil EnricherFunc")
	}
	if f, ok := sink.(SinkFunc[T, R]); ok && f == nil {
		return optionErr(args[2], "nil SinkFunc")
	}
	return nil
}

// isLocker reports whether a CheckpointStore can lock run keys.
func isLocker(s CheckpointStore) bool {
	_, ok := s.(Locker)
	return ok
}
